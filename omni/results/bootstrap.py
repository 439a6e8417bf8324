"""Intervals over training seeds and test data: how sure are we that one WER differs from another?

Two sources of noise: the training run (seed: batch order, augmentation, sampling) and the test
set. The test set's part is a bootstrap: utterances (not words) are its resampling unit because
errors within an utterance are correlated, or clusters (speakers, or voices) where a split has
enough of them; corpus WER is re-computed per resample as sum(errors) / sum(words), exactly as
the point estimate is. Paired: both systems are scored on the same resampled utterances, so the
variance of the test set itself cancels out of their difference.

The seed part is NOT bootstrapped: three seeds give 10 distinct resampled multisets, and a
percentile interval over them is 2-3x too narrow (its variance estimate divides by n, and a normal
quantile stands where a t quantile belongs). Instead the interval is t-based: the variance of the
seed mean from the seeds' sample variance (ddof 1), plus the test bootstrap's variance (scaled by
k / (k - 1) for its k resampling units, with k - 1 degrees of freedom), with Welch-Satterthwaite
degrees of freedom, so a cell of three seeds uses a t quantile near t(2) = 4.30 when the seeds
dominate and near the test part's own (1.97 for 200 utterances, 2.57 for 6 voices) when it does.
tests/test_report.py checks by simulation that its 95 % intervals cover about 95 %.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

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
    """WER of `system` minus WER of `baseline` (negative = system better), with its intervals: the test
    bootstrap's percentile interval for one run per side (or seeds that agree exactly), else t-based
    (module docstring). `seed_diffs_*`: per training seed, system - baseline on the whole split (paired
    seeds only; empty otherwise). `test_sd_rel_pct`: the relative difference's spread over test
    resamples alone (what the test data can resolve, whatever the seeds)."""

    wer_system: float
    wer_baseline: float
    diff_abs: float
    diff_rel_pct: float
    ci_abs: tuple[float, float]
    ci_rel_pct: tuple[float, float]
    confidence: float
    resamples: int
    seed_diffs_abs: tuple[float, ...] = ()
    seed_diffs_rel_pct: tuple[float, ...] = ()
    degrees_of_freedom: float = math.inf
    test_sd_rel_pct: float = math.nan

    @property
    def excludes_zero(self) -> bool:
        """Significant at `confidence`: the whole interval lies on one side of zero."""
        low, high = self.ci_abs
        return bool(low > 0.0 or high < 0.0)


def wer_interval(errors: ArrayLike, ref_words: ArrayLike, settings: BootstrapSettings,
                 clusters: ArrayLike | None = None) -> tuple[float, float]:
    """CI of one system's corpus WER (error bars): `errors` is one row per utterance, or a (seeds,
    utterances) array whose seed-mean WER is bounded over seeds (t-based) and test data."""
    runs = np.atleast_2d(np.asarray(errors, dtype=np.float64))
    sums, words = _cluster_sums(runs, ref_words, clusters)
    resampled = _resampled_sums(np.vstack([sums, words]), settings)
    test_draws = (resampled[:-1] / resampled[-1]).mean(axis=0)
    per_run = sums.sum(axis=1) / words.sum()
    return _interval(float(per_run.mean()), test_draws, sums.shape[1], _seed_variance([per_run]),
                     settings.confidence)


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
    utterances. The test part resamples the utterances -- or, given `clusters` (a speaker or voice per
    utterance), whole clusters -- once per resample for every run of both sides (paired), and takes
    the seed-mean difference. The seed part is the sample variance of the seed means: of the per-seed
    differences when `paired_seeds` (run i of both sides shares its seed's batches), else of each
    side's runs (Welch). The relative difference is relative to the baseline's seed-mean WER; a test
    resample where the baseline makes no error is left out of its interval only (NaN if all are).
    """
    system = np.atleast_2d(np.asarray(errors_system, dtype=np.float64))
    baseline = np.atleast_2d(np.asarray(errors_baseline, dtype=np.float64))
    if paired_seeds and len(system) != len(baseline):
        raise ValueError(f"paired seeds need as many runs on each side, got {len(system)} and {len(baseline)}")
    sums, words = _cluster_sums(np.vstack([system, baseline]), ref_words, clusters)
    per_run = sums.sum(axis=1) / words.sum()
    runs_sys, runs_base = per_run[:len(system)], per_run[len(system):]
    wer_sys, wer_base = float(runs_sys.mean()), float(runs_base.mean())
    resampled = _resampled_sums(np.vstack([sums, words]), settings)
    res_sys = (resampled[:len(system)] / resampled[-1]).mean(axis=0)
    res_base = (resampled[len(system):-1] / resampled[-1]).mean(axis=0)
    res_diff = res_sys - res_base
    with np.errstate(divide="ignore", invalid="ignore"):
        res_rel = np.where(res_base > 0, _PERCENT * res_diff / res_base, np.nan)
    res_rel = res_rel[np.isfinite(res_rel)]
    scale = _PERCENT / wer_base if wer_base > 0 else float("nan")
    rel_point = scale * (wer_sys - wer_base)
    seed_diffs = runs_sys - runs_base if paired_seeds else np.array([])
    groups = [seed_diffs] if paired_seeds else [runs_sys, runs_base]
    seed_abs = _seed_variance(groups)
    seed_rel = (seed_abs[0] * scale ** 2, seed_abs[1])
    units = sums.shape[1]
    ci_abs = _interval(wer_sys - wer_base, res_diff, units, seed_abs, settings.confidence)
    ci_rel = _interval(rel_point, res_rel, units, seed_rel, settings.confidence)
    return PairedDifference(
        wer_system=wer_sys,
        wer_baseline=wer_base,
        diff_abs=wer_sys - wer_base,
        diff_rel_pct=float(rel_point),
        ci_abs=ci_abs,
        ci_rel_pct=ci_rel,
        confidence=settings.confidence,
        resamples=settings.resamples,
        seed_diffs_abs=tuple(float(d) for d in seed_diffs),
        seed_diffs_rel_pct=tuple(float(scale * d) for d in seed_diffs),
        degrees_of_freedom=_degrees_of_freedom(_test_part(res_diff, units), seed_abs) if seed_abs[0] > 0 else math.inf,
        test_sd_rel_pct=float(np.sqrt(_variance(res_rel))),
    )


def _seed_variance(groups: Sequence[NDArray[np.float64]]) -> tuple[float, float]:
    """(variance of the seed mean, its degrees of freedom): per group of runs, sample variance / runs,
    summed (one group: the paired differences; two: each side's runs, Welch-Satterthwaite). A group of
    one run contributes nothing (one dense model, say); no group of several: (0, inf)."""
    parts = [(float(np.var(group, ddof=1)) / len(group), len(group) - 1) for group in groups if len(group) > 1]
    total = sum(variance for variance, _ in parts)
    if total <= 0.0:
        return 0.0, math.inf
    return total, total ** 2 / sum(variance ** 2 / df for variance, df in parts if variance > 0)


def _variance(draws: NDArray[np.float64]) -> float:
    return float(np.var(draws, ddof=1)) if draws.size > 1 else 0.0


def _test_part(draws: NDArray[np.float64], units: int) -> tuple[float, float]:
    """(variance, degrees of freedom) of the test part from its bootstrap draws over `units` resampling
    units: the bootstrap variance of a mean of k units is (k - 1) / k of the unbiased one, and k - 1 is
    its degrees of freedom (6 voices: 5, not infinity)."""
    if units < 2:
        return _variance(draws), math.inf
    return _variance(draws) * units / (units - 1), units - 1


def _degrees_of_freedom(test: tuple[float, float], seed: tuple[float, float]) -> float:
    """Welch-Satterthwaite degrees of freedom of the sum of the test and the seed variance."""
    parts = [(variance, df) for variance, df in (test, seed) if variance > 0.0]
    if not parts:
        return math.inf
    return sum(variance for variance, _ in parts) ** 2 / sum(variance ** 2 / df for variance, df in parts)


def _interval(point: float, test_draws: NDArray[np.float64], units: int, seed: tuple[float, float],
              confidence: float) -> tuple[float, float]:
    """Without a seed part, the test bootstrap's percentile interval; with one, point -/+ t x the
    standard error of both parts."""
    if seed[0] <= 0.0:
        return _percentile_interval(test_draws, confidence)
    if test_draws.size == 0 or not math.isfinite(point):
        return float("nan"), float("nan")
    test = _test_part(test_draws, units)
    half = student_t_quantile(0.5 + confidence / 2, _degrees_of_freedom(test, seed)) * math.sqrt(test[0] + seed[0])
    return point - half, point + half


def student_t_quantile(probability: float, degrees_of_freedom: float) -> float:
    """Quantile of Student's t (any real df > 0; inf = normal), by bisection on its CDF, whose upper
    tail is half the regularised incomplete beta I_{df/(df+t^2)}(df/2, 1/2), computed by Lentz's
    continued fraction (Numerical Recipes 6.4): no SciPy in the stack for one function."""
    if not 0.0 < probability < 1.0:
        raise ValueError(f"t quantile: probability must be in (0, 1), got {probability}")
    if probability < 0.5:
        return -student_t_quantile(1.0 - probability, degrees_of_freedom)
    if math.isinf(degrees_of_freedom):
        return _normal_quantile(probability)
    df = degrees_of_freedom
    low, high = 0.0, 1.0
    while 1.0 - 0.5 * _incomplete_beta(df / (df + high * high), df / 2, 0.5) < probability:
        high *= 2.0
    for _ in range(100):
        middle = (low + high) / 2
        if 1.0 - 0.5 * _incomplete_beta(df / (df + middle * middle), df / 2, 0.5) < probability:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _normal_quantile(probability: float) -> float:
    low, high = -40.0, 40.0
    for _ in range(200):
        middle = (low + high) / 2
        if 0.5 * math.erfc(-middle / math.sqrt(2)) < probability:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _incomplete_beta(x: float, a: float, b: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(x, a, b) / a
    return 1.0 - front * _beta_fraction(1.0 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


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
    # numpy's stub types ufunc.at's indices as integer arrays only; a tuple with a slice is documented and works
    np.add.at(summed, (slice(None), index), counts)  # type: ignore[arg-type]
    return summed[:-1], summed[-1]


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
