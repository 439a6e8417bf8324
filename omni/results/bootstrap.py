"""Bootstrap over utterances: how sure are we that one WER differs from another?

Utterances (not words) are the resampling unit because errors within an utterance are
correlated; corpus WER is re-computed per resample as sum(errors) / sum(words), exactly as
the point estimate is. Paired: both systems are scored on the same resampled utterances, so
the variance of the test set itself cancels out of their difference.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Upper bound on resample-index elements drawn at once (32 MiB of int64 indices, ~100 MiB of
# gathered counts), so a paper-scale test set with many resamples never needs gigabytes.
_MAX_INDEX_ELEMENTS = 2**22
_PERCENT = 100.0


@dataclass(frozen=True)
class BootstrapSettings:
    """The `report.bootstrap_*` / `report.confidence` config values, carried together."""

    resamples: int
    confidence: float
    seed: int

    @classmethod
    def from_section(cls, report: Mapping[str, Any]) -> BootstrapSettings:
        """From the rule section omni.job_params.comparison (the same values in every table and figure)."""
        return cls(resamples=report["bootstrap_resamples"], confidence=report["confidence"],
                   seed=report["bootstrap_seed"])

    def __post_init__(self) -> None:
        if self.resamples < 1:
            raise ValueError(f"bootstrap resamples must be >= 1, got {self.resamples}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"bootstrap confidence must be in (0, 1), got {self.confidence}")


@dataclass(frozen=True)
class PairedDifference:
    """WER of `system` minus WER of `baseline` (negative = system better), with percentile CIs."""

    wer_system: float
    wer_baseline: float
    diff_abs: float
    diff_rel_pct: float
    ci_abs: tuple[float, float]
    ci_rel_pct: tuple[float, float]
    confidence: float
    resamples: int

    @property
    def excludes_zero(self) -> bool:
        """Significant at `confidence`: the whole interval lies on one side of zero."""
        low, high = self.ci_abs
        return bool(low > 0.0 or high < 0.0)


def wer_interval(errors: ArrayLike, ref_words: ArrayLike,
                 settings: BootstrapSettings) -> tuple[float, float]:
    """Percentile CI of one system's corpus WER (error bars of a single model)."""
    counts = _as_counts(errors, ref_words)
    sums = _resampled_sums(counts, settings)
    return _percentile_interval(sums[0] / sums[1], settings.confidence)


def paired_bootstrap(errors_system: ArrayLike, errors_baseline: ArrayLike, ref_words: ArrayLike,
                     settings: BootstrapSettings) -> PairedDifference:
    """Difference system - baseline in absolute WER and relative to the baseline (%).

    The relative difference is undefined in a resample where the baseline makes no error;
    such resamples are left out of the relative interval only (NaN if all are).
    """
    counts = _as_counts(errors_system, errors_baseline, ref_words)
    err_sys, err_base, words = counts.sum(axis=1)
    wer_sys, wer_base = err_sys / words, err_base / words
    sums = _resampled_sums(counts, settings)
    res_sys, res_base = sums[0] / sums[2], sums[1] / sums[2]
    res_diff = res_sys - res_base
    with np.errstate(divide="ignore", invalid="ignore"):
        res_rel = np.where(res_base > 0, _PERCENT * res_diff / res_base, np.nan)
    rel_point = _PERCENT * (wer_sys - wer_base) / wer_base if wer_base > 0 else float("nan")
    return PairedDifference(
        wer_system=float(wer_sys),
        wer_baseline=float(wer_base),
        diff_abs=float(wer_sys - wer_base),
        diff_rel_pct=float(rel_point),
        ci_abs=_percentile_interval(res_diff, settings.confidence),
        ci_rel_pct=_percentile_interval(res_rel[np.isfinite(res_rel)], settings.confidence),
        confidence=settings.confidence,
        resamples=settings.resamples,
    )


def _as_counts(*columns: ArrayLike) -> NDArray[np.float64]:
    """Stack per-utterance counts (last one = reference words) into a (k, n) array, checked."""
    stacked = np.vstack([np.asarray(c, dtype=np.float64) for c in columns])
    if stacked.shape[1] == 0:
        raise ValueError("bootstrap needs at least one utterance")
    if np.any(stacked < 0):
        raise ValueError("error and word counts must be non-negative")
    if stacked[-1].sum() <= 0:
        raise ValueError("the utterances contain no reference words; WER is undefined")
    return stacked


def _resampled_sums(counts: NDArray[np.float64], settings: BootstrapSettings) -> NDArray[np.float64]:
    """(k, resamples) sums of each count row over utterances drawn with replacement.

    The generator is seeded per call, so every system scored on a split with the same settings
    sees the same resamples (their per-model intervals are paired too).
    """
    rng = np.random.default_rng(settings.seed)
    n = counts.shape[1]
    return np.concatenate(
        [counts[:, rng.integers(0, n, size=(chunk, n))].sum(axis=2) for chunk in _chunks(n, settings.resamples)],
        axis=1,
    )


def _chunks(n_utterances: int, resamples: int) -> Iterator[int]:
    per_chunk = max(1, _MAX_INDEX_ELEMENTS // n_utterances)
    for start in range(0, resamples, per_chunk):
        yield min(per_chunk, resamples - start)


def _percentile_interval(values: NDArray[np.float64], confidence: float) -> tuple[float, float]:
    if values.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)
