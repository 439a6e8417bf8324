"""Bootstrap over training seeds and test data: how sure are we that one WER differs from another?

Two sources of noise: the training run (seed: batch order, augmentation, sampling) and the test
set. Utterances (not words) are the test set's resampling unit because errors within an
utterance are correlated, or speakers where a split has enough of them (a speaker's utterances
are correlated too); corpus WER is re-computed per resample as sum(errors) / sum(words), exactly
as the point estimate is. Paired: both systems are scored on the same resampled utterances, so
the variance of the test set itself cancels out of their difference.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Upper bound on resample-index elements drawn at once (8 MiB of int64 indices, 8 MiB of gathered
# counts per run), so a paper-scale test set with many resamples and seeds never needs gigabytes.
_MAX_INDEX_ELEMENTS = 2**20
_PERCENT = 100.0


@dataclass(frozen=True)
class BootstrapSettings:
    """The `report.bootstrap_*` / `report.confidence` config values, carried together."""

    resamples: int
    confidence: float
    seed: int
    min_speakers: int       # a split with at least this many speakers resamples speakers, else utterances

    @classmethod
    def from_section(cls, report: Mapping[str, Any]) -> BootstrapSettings:
        """From the rule section omni.job_params.comparison (the same values in every table and figure)."""
        return cls(resamples=report["bootstrap_resamples"], confidence=report["confidence"],
                   seed=report["bootstrap_seed"], min_speakers=report["bootstrap_min_speakers"])

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


def wer_interval(errors: ArrayLike, ref_words: ArrayLike, settings: BootstrapSettings,
                 clusters: ArrayLike | None = None) -> tuple[float, float]:
    """Percentile CI of one system's corpus WER (error bars): `errors` is one row per utterance, or
    a (seeds, utterances) array whose seed-mean WER is bounded over seeds and utterances."""
    runs = np.atleast_2d(np.asarray(errors, dtype=np.float64))
    sums, words = _cluster_sums(runs, ref_words, clusters)
    resampled = _resampled_sums(np.vstack([sums, words]), settings)
    seeds = _seed_draws(len(runs), resampled.shape[1], settings, stream=1)
    return _percentile_interval(_mean_wer(resampled[:-1], resampled[-1], seeds), settings.confidence)


def paired_bootstrap(errors_system: ArrayLike, errors_baseline: ArrayLike, ref_words: ArrayLike,
                     settings: BootstrapSettings, clusters: ArrayLike | None = None) -> PairedDifference:
    """Difference system - baseline in absolute WER and relative to the baseline (%), one run each."""
    return seeded_paired_bootstrap(np.atleast_2d(errors_system), np.atleast_2d(errors_baseline), ref_words,
                                   settings, clusters)


def seeded_paired_bootstrap(errors_system: ArrayLike, errors_baseline: ArrayLike, ref_words: ArrayLike,
                            settings: BootstrapSettings, clusters: ArrayLike | None = None,
                            paired_seeds: bool = False) -> PairedDifference:
    """Difference of seed-mean WERs, system - baseline, with an interval over training seeds AND test data.

    `errors_*` are (runs, utterances) arrays: one row per training seed, every row scored on the same
    utterances. Seeds and utterances are crossed (every seed scores every utterance), so each
    resample draws the runs of each side with replacement (the same seed indices on both sides when
    `paired_seeds`: run i of both sides shares its seed) and, once, the utterances -- or, given
    `clusters` (a speaker per utterance), whole speakers -- applied to every run of both sides (paired).
    A WER is corpus WER per run (errors / words on the drawn utterances), averaged over the drawn
    runs. With one run per side this is the paired bootstrap over utterances. The relative difference
    is undefined in a resample where the baseline makes no error; such resamples are left out of the
    relative interval only (NaN if all are).
    """
    system = np.atleast_2d(np.asarray(errors_system, dtype=np.float64))
    baseline = np.atleast_2d(np.asarray(errors_baseline, dtype=np.float64))
    if paired_seeds and len(system) != len(baseline):
        raise ValueError(f"paired seeds need as many runs on each side, got {len(system)} and {len(baseline)}")
    sums, words = _cluster_sums(np.vstack([system, baseline]), ref_words, clusters)
    wer_sys = float(np.mean(sums[:len(system)].sum(axis=1) / words.sum()))
    wer_base = float(np.mean(sums[len(system):].sum(axis=1) / words.sum()))
    resampled = _resampled_sums(np.vstack([sums, words]), settings)
    resamples = resampled.shape[1]
    seeds_sys = _seed_draws(len(system), resamples, settings, stream=1)
    seeds_base = seeds_sys if paired_seeds else _seed_draws(len(baseline), resamples, settings, stream=2)
    res_sys = _mean_wer(resampled[:len(system)], resampled[-1], seeds_sys)
    res_base = _mean_wer(resampled[len(system):-1], resampled[-1], seeds_base)
    res_diff = res_sys - res_base
    with np.errstate(divide="ignore", invalid="ignore"):
        res_rel = np.where(res_base > 0, _PERCENT * res_diff / res_base, np.nan)
    rel_point = _PERCENT * (wer_sys - wer_base) / wer_base if wer_base > 0 else float("nan")
    return PairedDifference(
        wer_system=wer_sys,
        wer_baseline=wer_base,
        diff_abs=wer_sys - wer_base,
        diff_rel_pct=float(rel_point),
        ci_abs=_percentile_interval(res_diff, settings.confidence),
        ci_rel_pct=_percentile_interval(res_rel[np.isfinite(res_rel)], settings.confidence),
        confidence=settings.confidence,
        resamples=settings.resamples,
    )


def _cluster_sums(runs: NDArray[np.float64], ref_words: ArrayLike,
                  clusters: ArrayLike | None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(runs, units) error sums and (units,) word sums; a unit is an utterance, or a cluster's utterances
    summed (resampling whole speakers keeps their correlated utterances together)."""
    counts = _as_counts(*runs, ref_words)
    if clusters is None:
        return counts[:-1], counts[-1]
    labels = np.asarray(clusters)
    if labels.shape != (counts.shape[1],):
        raise ValueError(f"clusters: {labels.shape[0] if labels.ndim else 0} labels for {counts.shape[1]} utterances")
    _, index = np.unique(labels, return_inverse=True)
    summed = np.zeros((counts.shape[0], index.max() + 1))
    np.add.at(summed, (slice(None), index), counts)
    return summed[:-1], summed[-1]


def _seed_draws(runs: int, resamples: int, settings: BootstrapSettings, stream: int) -> NDArray[np.int64]:
    """(resamples, runs) run indices drawn with replacement; one run is always itself. A separate
    generator from the utterance draws, so one run per side gives exactly the utterance bootstrap."""
    if runs == 1:
        return np.zeros((resamples, 1), dtype=np.int64)
    return np.random.default_rng([settings.seed, stream]).integers(0, runs, size=(resamples, runs))


def _mean_wer(errors: NDArray[np.float64], words: NDArray[np.float64],
              draws: NDArray[np.int64]) -> NDArray[np.float64]:
    """Per resample: the mean over its drawn runs of errors / words."""
    per_run = errors / words          # (runs, resamples)
    return np.take_along_axis(per_run.T, draws, axis=1).mean(axis=1)


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
