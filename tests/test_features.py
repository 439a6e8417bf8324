"""Log-mel frame bookkeeping, feature statistics, SpecAugment."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch

from omni.data.features import (
    MASK_VALUE,
    FeatureNormalizer,
    LogMel,
    SpecAugment,
    compute_feature_stats,
    load_feature_stats,
)
from omni.data.manifest import MANIFEST_COLUMNS

REPO = Path(__file__).resolve().parent.parent
RATE = 16000
FEATURE_CFG = {
    "n_mels": 20,
    "n_fft": 400,
    "hop_length": 160,
    "spec_augment": {"freq_masks": 2, "freq_mask_width": 5, "time_masks": 2, "time_mask_max_fraction": 0.2},
}
LOGMEL = {"sample_rate": RATE, "n_mels": 20, "n_fft": 400, "hop_length": 160}  # omni.job_params.logmel
N_FFT, HOP, N_MELS = FEATURE_CFG["n_fft"], FEATURE_CFG["hop_length"], FEATURE_CFG["n_mels"]
# Edge cases of the frame count: exactly one window, one sample short of a second frame, longer ones.
LENGTHS = [N_FFT, N_FFT + HOP - 1, 8000, 12345]


@pytest.fixture
def logmel() -> LogMel:
    return LogMel.from_section(LOGMEL)


def noise(length: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(-0.5, 0.5, length).astype(np.float32))


def test_frame_lengths_match_each_utterance_alone(logmel: LogMel) -> None:
    waves = [noise(length, seed) for seed, length in enumerate(LENGTHS)]
    batch = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    features, frame_lengths = logmel(batch, torch.tensor(LENGTHS))
    assert frame_lengths.tolist() == [1, 1, 48, 75]
    for row, wave in enumerate(waves):
        alone, alone_lengths = logmel(wave[None, :], torch.tensor([len(wave)]))
        count = int(frame_lengths[row])
        assert alone.shape == (1, count, N_MELS) and int(alone_lengths) == count
        torch.testing.assert_close(features[row, :count], alone[0], rtol=1e-5, atol=1e-5)
        assert torch.all(features[row, count:] == 0)


def test_shorter_than_one_window_is_an_error_naming_the_key(logmel: LogMel) -> None:
    with pytest.raises(ValueError, match="features.n_fft"):
        logmel(torch.zeros(1, N_FFT), torch.tensor([N_FFT - 1]))


@pytest.fixture
def tiny_manifest(tmp_path: Path) -> pd.DataFrame:
    """Three noise files of different lengths and loudness, so every bin has its own statistics."""
    rows = []
    for seed, (length, gain) in enumerate([(4000, 0.1), (7000, 0.5), (9999, 0.9)]):
        path = tmp_path / f"1-1-{seed}.flac"
        soundfile.write(path, gain * noise(length, seed).numpy(), RATE, subtype="PCM_16")
        rows.append([path.stem, str(path), length / RATE, length, RATE, "NOISE", "1", 0])
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def direct_frames(manifest: pd.DataFrame, logmel: LogMel) -> torch.Tensor:
    frames = []
    for path in manifest["audio_path"]:
        wave = torch.from_numpy(soundfile.read(path, dtype="float32")[0])
        features, _ = logmel(wave[None, :], torch.tensor([len(wave)]))
        frames.append(features[0])
    return torch.cat(frames).double()


def test_stats_match_a_direct_computation(tiny_manifest: pd.DataFrame, logmel: LogMel) -> None:
    stats = compute_feature_stats(tiny_manifest, LOGMEL, workers=1)
    frames = direct_frames(tiny_manifest, logmel)
    assert stats["frames"] == len(frames)
    np.testing.assert_allclose(stats["mean"], frames.mean(0).numpy(), rtol=1e-9)
    np.testing.assert_allclose(stats["std"], frames.std(0, unbiased=False).numpy(), rtol=1e-6)
    normalized = FeatureNormalizer(stats["mean"], stats["std"])(frames.float()).double()
    np.testing.assert_allclose(normalized.mean(0).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalized.std(0, unbiased=False).numpy(), 1.0, atol=1e-4)


def test_stats_do_not_depend_on_worker_count(tiny_manifest: pd.DataFrame) -> None:
    one = compute_feature_stats(tiny_manifest, LOGMEL, workers=1)
    two = compute_feature_stats(tiny_manifest, LOGMEL, workers=2)
    assert one == two


def test_load_feature_stats_checks_bins_against_config(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    path.write_text(json.dumps({"mean": [0.0] * N_MELS, "std": [1.0] * N_MELS, "frames": 10}))
    assert load_feature_stats(path, n_mels=N_MELS)["frames"] == 10
    with pytest.raises(ValueError, match="config features.n_mels is 80"):
        load_feature_stats(path, n_mels=80)


def augment_input(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([100, 60, 7])
    features = torch.randn(len(lengths), int(lengths.max()), N_MELS, generator=torch.Generator().manual_seed(seed))
    return features + 10.0, lengths  # far from MASK_VALUE, so masked cells are unambiguous


def test_spec_augment_masks_only_within_each_length() -> None:
    features, lengths = augment_input()
    out = SpecAugment(FEATURE_CFG["spec_augment"])(features, lengths, torch.Generator().manual_seed(0))
    masked = out == MASK_VALUE
    assert masked.any()
    for row, length in enumerate(lengths.tolist()):
        assert torch.equal(out[row, length:], features[row, length:])
        whole_frames = masked[row, :length].all(dim=1).sum().item()
        max_width = int(length * FEATURE_CFG["spec_augment"]["time_mask_max_fraction"])
        assert whole_frames <= FEATURE_CFG["spec_augment"]["time_masks"] * max_width
        whole_bins = masked[row, :length].all(dim=0).sum().item()
        spec = FEATURE_CFG["spec_augment"]
        assert whole_bins <= spec["freq_masks"] * spec["freq_mask_width"]
    assert torch.equal(out[~masked], features[~masked])


def test_spec_augment_is_a_function_of_its_generator_seed() -> None:
    features, lengths = augment_input()
    augment = SpecAugment(FEATURE_CFG["spec_augment"])
    first = augment(features, lengths, torch.Generator().manual_seed(3))
    torch.manual_seed(99)  # the global RNG plays no part
    assert torch.equal(augment(features, lengths, torch.Generator().manual_seed(3)), first)
    assert not torch.equal(augment(features, lengths, torch.Generator().manual_seed(4)), first)


def test_feature_stats_rule_writes_the_stats(tiny_manifest: pd.DataFrame, tmp_path: Path) -> None:
    manifest = tmp_path / "train.tsv"
    tiny_manifest.to_csv(manifest, sep="\t", index=False)
    smk = SimpleNamespace(
        input=SimpleNamespace(manifest=str(manifest)),
        output=SimpleNamespace(stats=str(tmp_path / "feature_stats.json")),
        params=SimpleNamespace(logmel=LOGMEL),
        log=[str(tmp_path / "feature_stats.log")],
        threads=1,
    )
    threads = torch.get_num_threads()
    try:
        runpy.run_path(str(REPO / "workflow_scripts" / "feature_stats.py"), init_globals={"snakemake": smk})
    finally:
        torch.set_num_threads(threads)
    written = load_feature_stats(smk.output.stats, n_mels=N_MELS)
    assert written == compute_feature_stats(tiny_manifest, LOGMEL, workers=1)


def test_statistics_of_a_seeded_sample_are_close_to_the_full_sets(prepared) -> None:
    """features.stats_utterances: half the smoke training set, drawn with the study's seed, gives the
    full set's statistics within a small fraction of each bin's spread, and the same draw every time."""
    from omni import job_params
    from omni.data.manifest import read_manifest

    train = read_manifest(prepared.manifests["train"])
    full = compute_feature_stats(train, job_params.feature_stats(prepared.config), workers=2)
    config = {**prepared.config, "features": {**prepared.config["features"], "stats_utterances": len(train) // 2}}
    section = job_params.feature_stats(config)
    assert section["sample"] == {"utterances": len(train) // 2, "seed": config["seed"]}
    assert "sample" not in job_params.feature_stats(prepared.config), "the full set declares no sample"
    sampled = compute_feature_stats(train, section, workers=2)
    assert sampled["utterances"] == len(train) // 2 and full["utterances"] == len(train)
    assert sampled == compute_feature_stats(train, section, workers=1), "seeded, and independent of the workers"
    mean_gap = np.abs(np.array(sampled["mean"]) - np.array(full["mean"])) / np.array(full["std"])
    std_ratio = np.array(sampled["std"]) / np.array(full["std"])
    print(
        f"sample of {len(train) // 2}: max mean gap {mean_gap.max():.3f} std, "
        f"max std ratio error {np.abs(std_ratio - 1).max():.3f}"
    )
    assert mean_gap.max() < 0.1 and np.abs(std_ratio - 1).max() < 0.1, (mean_gap.max(), std_ratio)
