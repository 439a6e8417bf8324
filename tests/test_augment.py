"""Waveform augmentation: identity when off, speed changes lengths, noise hits the requested SNR,
padding stays zero, and the draws are a function of the generator's seed alone."""

from __future__ import annotations

import math

import pytest
import torch

from omni.data.augment import WaveAugment

SAMPLE_RATE = 16000
LENGTHS = torch.tensor([16000, 9000, 4000])
OFF = {"speed_factors": [1.0], "noise_prob": 0.0, "noise_snr_db": [10, 10], "noise_kinds": ["white"]}


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    waves = torch.zeros(len(LENGTHS), int(LENGTHS.max()))
    for row, length in enumerate(LENGTHS.tolist()):
        t = torch.arange(length) / SAMPLE_RATE
        waves[row, :length] = 0.3 * torch.sin(2 * math.pi * 220 * t) + 0.05 * torch.randn(length, generator=generator)
    return waves, LENGTHS.clone()


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_off_is_identity() -> None:
    waves, lengths = batch()
    out, out_lengths = WaveAugment(OFF, SAMPLE_RATE)(waves, lengths, seeded())
    assert out is waves and torch.equal(out_lengths, lengths)


@pytest.mark.parametrize("factor", [0.85, 0.9, 1.1, 1.15])
def test_speed_scales_lengths_and_keeps_padding_zero(factor: float) -> None:
    waves, lengths = batch()
    out, out_lengths = WaveAugment({**OFF, "speed_factors": [factor]}, SAMPLE_RATE)(waves, lengths, seeded())
    assert torch.equal(out_lengths, torch.floor(lengths / factor).long())
    # The batch ends with its longest utterance: extra width would give frames past every length.
    assert out.size(1) == int(out_lengths.max())
    for row, length in enumerate(out_lengths.tolist()):
        assert not out[row, length:].any()
        assert out[row, :length].abs().max() > 0.1


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
def test_noise_reaches_the_requested_snr_inside_each_utterance(kind: str) -> None:
    waves, lengths = batch()
    snr_db = 12.0
    augment = WaveAugment(
        {**OFF, "noise_prob": 1.0, "noise_snr_db": [snr_db, snr_db], "noise_kinds": [kind]}, SAMPLE_RATE
    )
    out, out_lengths = augment(waves, lengths, seeded())
    assert torch.equal(out_lengths, lengths)
    noise = out - waves
    for row, length in enumerate(lengths.tolist()):
        assert not out[row, length:].any()
        measured = 10 * math.log10(float(waves[row, :length].pow(2).sum() / noise[row, :length].pow(2).sum()))
        assert measured == pytest.approx(snr_db, abs=1e-3)


def test_noise_prob_selects_a_fraction_and_draws_are_seeded() -> None:
    waves = torch.randn(200, 800)
    lengths = torch.full((200,), 800)
    augment = WaveAugment({**OFF, "noise_prob": 0.3, "noise_kinds": ["white", "pink"]}, SAMPLE_RATE)
    first, _ = augment(waves, lengths, seeded(11))
    torch.manual_seed(99)  # the global RNG plays no part
    second, _ = augment(waves, lengths, seeded(11))
    assert torch.equal(first, second)
    assert not torch.equal(first, augment(waves, lengths, seeded(12))[0])
    noisy = (first != waves).any(dim=1).float().mean().item()
    assert 0.2 < noisy < 0.4
