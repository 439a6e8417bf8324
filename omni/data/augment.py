"""Waveform augmentation for training: speed perturbation and additive noise.

Why: a model trained on clean synthetic speech alone is brittle. The session-2 dense default
(no augmentation) read 15 % WER on dev but 46 % with white noise at 30 dB SNR, ~98 % at 20 dB,
and ~90-100 % at 0.8x / 1.25x speed; test-other (unseen voices, rate extremes, 15 dB noise) was
at 96 %. Training on perturbed copies is the standard remedy (speed perturbation: Ko et al.
2015; additive noise: multi-condition training). With it on the second half of the dense job and
94 training voices, test-other fell to 59 % (the rest of that gap is unseen voices, not noise).

Applied where a batch is built (omni.data.batches: in DataLoader workers when there are any), not
on the training device: resampling is the costly part and a GPU job should not wait for it. Every
draw comes from a generator the caller seeds per batch, so a batch's perturbation is a function of
the batch alone: the same with or without workers, in a resumed run and on any data-parallel rank.
Padding stays exactly zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torchaudio.functional as AF

NOISE_KINDS = ("white", "pink", "babble")
# Other utterances of the batch mixed into one babble track.
BABBLE_TALKERS = 3


class WaveAugment:
    def __init__(self, cfg: Mapping[str, Any], sample_rate: int) -> None:
        self.speed_factors = [float(f) for f in cfg["speed_factors"]]
        self.noise_prob = float(cfg["noise_prob"])
        self.snr_low, self.snr_high = (float(v) for v in cfg["noise_snr_db"])
        self.noise_kinds = list(cfg["noise_kinds"])
        self.sample_rate = sample_rate

    @property
    def active(self) -> bool:
        return self.speed_factors != [1.0] or self.noise_prob > 0

    def __call__(
        self, waveforms: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, S] zero-padded waveforms (CPU), [B] lengths -> perturbed copies and their new lengths."""
        if not self.active:
            return waveforms, lengths
        waveforms, lengths = self._speed(waveforms, lengths, generator)
        if self.noise_prob > 0:
            waveforms = self._add_noise(waveforms, lengths, generator)
        return waveforms, lengths

    def _speed(
        self, waveforms: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One factor per batch (one resampling kernel): a factor f plays the audio f times faster."""
        index = int(torch.randint(len(self.speed_factors), (), generator=generator))
        factor = self.speed_factors[index]
        if factor == 1.0:
            return waveforms, lengths
        resampled = AF.resample(waveforms, int(round(self.sample_rate * factor)), self.sample_rate)
        new_lengths = torch.clamp(torch.floor(lengths.double() / factor).long(), max=resampled.size(1))
        # Resampling rounds the width up; the batch must end where its longest utterance ends, or the
        # frontend makes frames past every length and rnnt_loss rejects the logits' time axis.
        resampled = resampled[:, : int(new_lengths.max())]
        return _zero_past(resampled, new_lengths), new_lengths

    def _add_noise(self, waveforms: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        batch = waveforms.size(0)
        kinds = torch.randint(len(self.noise_kinds), (batch,), generator=generator)
        chosen = torch.rand(batch, generator=generator) < self.noise_prob
        snr_db = self.snr_low + (self.snr_high - self.snr_low) * torch.rand(batch, generator=generator)
        noise = torch.zeros_like(waveforms)
        for code, kind in enumerate(self.noise_kinds):
            rows = (kinds == code).nonzero().flatten().tolist()
            if rows:
                noise[rows] = self._noise(kind, rows, waveforms, generator)
        noise = _zero_past(noise, lengths)
        noisy = AF.add_noise(waveforms, noise, snr_db, lengths)
        # An all-zero noise row has no SNR (add_noise divides by its energy): that row stays clean.
        keep = chosen & noise.abs().sum(1).gt(0)
        return torch.where(keep[:, None], noisy, waveforms)

    def _noise(self, kind: str, rows: list[int], waveforms: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        samples = waveforms.size(1)
        if kind == "white":
            return torch.randn(len(rows), samples, generator=generator)
        if kind == "pink":  # 1/f power: white noise shaped by 1/sqrt(f) in the frequency domain
            spectrum = torch.fft.rfft(torch.randn(len(rows), samples, generator=generator))
            frequencies = torch.arange(spectrum.size(1)).clamp(min=1).to(spectrum.real.dtype)
            return torch.fft.irfft(spectrum / frequencies.sqrt(), samples)
        if kind == "babble":  # other talkers of the batch, each at a random circular offset
            batch = waveforms.size(0)
            babble = torch.zeros(len(rows), samples)
            for position, row in enumerate(rows):
                for talker in range(1, BABBLE_TALKERS + 1):
                    shift = int(torch.randint(samples, (), generator=generator))
                    babble[position] += torch.roll(waveforms[(row + talker) % batch], shift)
            return babble
        raise ValueError(f"unknown noise kind {kind!r} (config key augment.noise_kinds; one of {NOISE_KINDS})")


def _zero_past(waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    positions = torch.arange(waveforms.size(1), device=waveforms.device)
    return waveforms * (positions[None, :] < lengths[:, None]).to(waveforms.dtype)
