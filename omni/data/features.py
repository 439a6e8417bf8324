"""Log-mel features, their global normalisation statistics, and SpecAugment.

The cost that decides on-the-fly extraction vs a cache: LogMel (80 mels, 25/10 ms windows) took
0.6-0.8 ms of CPU per second of audio on one thread of the development CPU (bucketed batches or single
utterances alike), i.e. 0.15-0.2 s per 4 minutes of audio. Padding costs the same as audio, so batches
should be bucketed by length.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import torch
import torchaudio
from tqdm import tqdm

from omni.data.audio import AudioSpan
from omni.data.manifest import audio_spans

# Mel power floor before the log: just under the quietest bins of real 16-bit recordings (~3.5e-10 on
# the LibriSpeech sample), so real audio is untouched and digital silence (exact zeros, common in
# synthetic audio) lands just below real speech pauses instead of at -inf.
LOG_FLOOR = 1e-10
# Smallest standard deviation a feature bin may have, so a constant bin cannot blow up normalisation.
STD_FLOOR = 1e-5
# Frames past an utterance's length: a constant, so what else is in the batch cannot leak into them.
PAD_VALUE = 0.0
# Masked positions take the normalised features' global mean.
MASK_VALUE = 0.0
# Seconds between progress updates: a live view without flooding the job log on long corpora.
_PROGRESS_INTERVAL_S = 2.0
# Utterances in flight per stats worker thread: keeps both busy without holding a corpus of futures.
_STATS_WINDOW = 64


class LogMel(torch.nn.Module):
    """Log-mel filterbank features of padded batches.

    `center=False`: every frame lies wholly inside the signal, so an utterance's first
    `frame_lengths[b]` frames are exactly those of the utterance computed alone, whatever the padding.
    """

    def __init__(self, n_mels: int, n_fft: int, hop_length: int, sample_rate: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, center=False
        )

    @classmethod
    def from_section(cls, logmel: Mapping[str, Any]) -> LogMel:
        """From the rule section omni.job_params.logmel (sample rate, n_mels, n_fft, hop length)."""
        return cls(logmel["n_mels"], logmel["n_fft"], logmel["hop_length"], logmel["sample_rate"])

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths - self.n_fft, self.hop_length, rounding_mode="floor") + 1

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, S] samples, [B] lengths -> [B, T, n_mels] features (zero past each length), [B] frames."""
        shortest = int(lengths.min())
        if shortest < self.n_fft:
            raise ValueError(
                f"an utterance of {shortest} samples is shorter than one analysis window"
                f" (config features.n_fft = {self.n_fft})"
            )
        frame_lengths = self.frame_lengths(lengths)
        features = self.mel(waveforms).clamp_min(LOG_FLOOR).log().transpose(1, 2)
        frames = torch.arange(features.shape[1], device=features.device)
        padding = frames[None, :] >= frame_lengths[:, None]
        return features.masked_fill(padding[:, :, None], PAD_VALUE), frame_lengths


class FeatureNormalizer(torch.nn.Module):
    """Global mean/variance normalisation; buffers, so it follows the model to its device."""

    # Buffers (register_buffer below).
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std


class SpecAugment:
    """Frequency and time masks (Park et al. 2019) drawn per utterance from the batch's generator
    (on the CPU, so a batch's masks are the same on any device).

    Applied to normalised features, where MASK_VALUE is the global mean. Time masks are at most
    `time_mask_max_fraction` of the utterance's own length; nothing past a length is touched.
    """

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        self.freq_masks = int(cfg["freq_masks"])
        self.freq_mask_width = int(cfg["freq_mask_width"])
        self.time_masks = int(cfg["time_masks"])
        self.time_mask_max_fraction = float(cfg["time_mask_max_fraction"])

    def __call__(self, features: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """[B, T, F] features, [B] frame lengths -> masked copy."""
        _, num_frames, num_bins = features.shape
        frames = torch.arange(num_frames, device=features.device)
        valid = frames[None, :] < lengths[:, None]
        mask = torch.zeros_like(features, dtype=torch.bool)
        if self.freq_masks:
            bins = torch.full_like(lengths, num_bins)
            widths = torch.full_like(lengths, min(self.freq_mask_width, num_bins))
            band = _random_bands(self.freq_masks, widths, bins, num_bins, generator)
            mask |= band[:, None, :] & valid[:, :, None]
        if self.time_masks:
            widths = torch.floor(lengths * self.time_mask_max_fraction).long()
            band = _random_bands(self.time_masks, widths, lengths, num_frames, generator)
            mask |= band[:, :, None]
        return features.masked_fill(mask, MASK_VALUE)


def _random_bands(
    count: int, max_widths: torch.Tensor, extents: torch.Tensor, size: int, generator: torch.Generator
) -> torch.Tensor:
    """[B, size] union of `count` bands per row, widths uniform in 0..max_width, inside 0..extent."""
    draws = torch.rand(len(extents), count, 2, generator=generator).to(extents.device)
    widths = torch.floor(draws[..., 0] * (max_widths[:, None] + 1)).long()
    starts = torch.floor(draws[..., 1] * (extents[:, None] - widths + 1)).long()
    positions = torch.arange(size, device=extents.device)
    inside = (positions >= starts[..., None]) & (positions < (starts + widths)[..., None])
    return inside.any(dim=1)


def compute_feature_stats(manifest: pd.DataFrame, logmel: Mapping[str, Any], workers: int) -> dict[str, Any]:
    """Per-bin mean/std over every frame of `manifest`, or of a seeded sample of its utterances when
    `logmel` holds `sample` ({utterances, seed}: omni.job_params.feature_stats), streamed one
    utterance at a time.

    Utterances are summed in manifest order in float64, so the result does not depend on `workers`.
    Audio at another rate is resampled: the manifest only kept such files when config data.resample
    allowed it.
    """
    if manifest.empty:
        raise ValueError("feature statistics need at least one utterance; the manifest is empty")
    sample = logmel.get("sample")
    if sample and sample["utterances"] < len(manifest):
        manifest = manifest.sample(n=sample["utterances"], random_state=sample["seed"]).sort_index()
    spans = audio_spans(manifest)
    n_mels = logmel["n_mels"]
    total = np.zeros(n_mels, dtype=np.float64)
    total_sq = np.zeros(n_mels, dtype=np.float64)
    frames = 0
    with tqdm(
        total=len(spans), desc="feature stats", unit="utt", file=sys.stderr, mininterval=_PROGRESS_INTERVAL_S
    ) as progress:
        for sums, sums_sq, count in _utterance_sums_all(spans, logmel, workers):
            total += sums
            total_sq += sums_sq
            frames += count
            progress.update()
    mean = total / frames
    variance = np.maximum(total_sq / frames - mean**2, 0.0)
    std = np.maximum(np.sqrt(variance), STD_FLOOR)
    return {"mean": mean.tolist(), "std": std.tolist(), "frames": int(frames), "utterances": len(spans)}


def load_feature_stats(path: str | os.PathLike, n_mels: int | None = None) -> dict[str, Any]:
    """Read and check a stats file; `n_mels` catches a config changed since the stats were made."""
    with open(path) as handle:
        stats = json.load(handle)
    missing = {"mean", "std", "frames"} - set(stats)
    if missing:
        raise ValueError(f"feature stats {path} lack key(s) {sorted(missing)}")
    if len(stats["mean"]) != len(stats["std"]):
        raise ValueError(f"feature stats {path}: mean has {len(stats['mean'])} bins, std {len(stats['std'])}")
    if n_mels is not None and len(stats["mean"]) != n_mels:
        raise ValueError(
            f"feature stats {path} have {len(stats['mean'])} bins but config features.n_mels is {n_mels};"
            " recompute them"
        )
    values = stats["mean"] + stats["std"]
    if not all(math.isfinite(v) for v in values) or min(stats["std"]) <= 0:
        raise ValueError(f"feature stats {path} hold a non-finite mean/std or a std <= 0")
    return stats


def _utterance_sums(logmel: LogMel, sample_rate: int, span: AudioSpan) -> tuple[np.ndarray, np.ndarray, int]:
    waveform = span.read(sample_rate, resample=True)
    with torch.no_grad():
        features, _ = logmel(waveform[None, :], torch.tensor([len(waveform)]))
    frames = features[0].double().numpy()
    return frames.sum(axis=0), (frames**2).sum(axis=0), len(frames)


def _utterance_sums_all(
    spans: list[AudioSpan], logmel_section: Mapping[str, Any], workers: int
) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """Each utterance's (sum, sum of squares, frames), in manifest order, from `workers` threads.

    Threads, not processes: FLAC decoding and torch both release the GIL, and a process pool would
    re-run the caller's main module in every worker (Snakemake scripts and plain scripts have no
    `__main__` guard). Work is submitted a window at a time so memory stays flat on large corpora.
    """
    logmel = LogMel.from_section(logmel_section)
    job = functools.partial(_utterance_sums, logmel, logmel_section["sample_rate"])
    window = max(1, workers) * _STATS_WINDOW
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for start in range(0, len(spans), window):
            yield from pool.map(job, spans[start : start + window])
