"""The two-level interval's coverage, by simulation on synthetic studies whose true difference is known:
three training seeds (paired) and a test set drawn from a population of utterances, as the study has."""
from __future__ import annotations

import math

import numpy as np
import pytest

from omni.results.bootstrap import BootstrapSettings, seeded_paired_bootstrap, student_t_quantile

SETTINGS = BootstrapSettings(resamples=300, confidence=0.95, seed=7, min_speakers=20)
STUDIES = 400


def _study(rng: np.random.Generator, seeds: int, utterances: int, seed_sd: float) -> tuple[np.ndarray, ...]:
    """Errors of a baseline and of a system 10 % worse in expectation: every utterance has its own error
    rate (Beta), every training seed scales each system's rates by its own factor (a seed shared by both
    arms plus each arm's own part, `seed_sd`), errors are binomial in each utterance's words."""
    words = rng.integers(4, 16, size=utterances)
    rate = rng.beta(2.0, 8.0, size=utterances)                 # population mean 0.2
    shared = rng.normal(0.0, seed_sd, size=(seeds, 1))
    factor_base = np.clip(1.0 + shared + rng.normal(0.0, seed_sd, size=(seeds, 1)), 0.05, None)
    factor_sys = np.clip(1.1 + shared + rng.normal(0.0, seed_sd, size=(seeds, 1)), 0.05, None)
    baseline = rng.binomial(words, np.clip(rate * factor_base, 0, 1))
    system = rng.binomial(words, np.clip(rate * factor_sys, 0, 1))
    return system, baseline, words


@pytest.mark.parametrize("seed_sd, label", [(0.08, "seeds dominate"), (0.0, "test data alone")])
def test_95_percent_intervals_cover_the_true_difference_about_95_percent_of_the_time(seed_sd: float,
                                                                                      label: str) -> None:
    rng = np.random.default_rng(11)
    true_rel = 10.0   # E[system] / E[baseline] - 1: the seed factors average 1.1 and 1.0 (clipping aside)
    covered = widths = 0.0
    for study in range(STUDIES):
        system, baseline, words = _study(rng, 3, 200, seed_sd)
        difference = seeded_paired_bootstrap(system, baseline, words,
                                             BootstrapSettings(300, 0.95, study, 20), paired_seeds=True)
        low, high = difference.ci_rel_pct
        covered += low <= true_rel <= high
        widths += high - low
    coverage = covered / STUDIES
    assert 0.92 <= coverage <= 0.985, f"{label}: {coverage:.3f} of {STUDIES} intervals cover the truth"


def test_the_seed_part_uses_t_quantiles_and_keeps_the_per_seed_differences() -> None:
    assert student_t_quantile(0.975, 2) == pytest.approx(4.302653, abs=1e-5)
    assert student_t_quantile(0.975, 10) == pytest.approx(2.228139, abs=1e-5)
    assert student_t_quantile(0.975, math.inf) == pytest.approx(1.959964, abs=1e-5)
    assert student_t_quantile(0.05, 4) == pytest.approx(-2.131847, abs=1e-5)
    words = np.full(100, 10)
    baseline = np.vstack([np.full(100, 2)] * 3)
    system = baseline + np.array([[0], [1], [2]])      # per-seed differences 0, 0.1, 0.2 WER; no test noise
    difference = seeded_paired_bootstrap(system, baseline, words, SETTINGS, paired_seeds=True)
    assert difference.seed_diffs_abs == pytest.approx((0.0, 0.1, 0.2))
    assert difference.seed_diffs_rel_pct == pytest.approx((0.0, 50.0, 100.0))
    assert difference.degrees_of_freedom == pytest.approx(2.0)
    half = 4.302653 * 0.1 / math.sqrt(3)                # t(2) x SD / sqrt(n)
    assert difference.ci_abs == pytest.approx((0.1 - half, 0.1 + half), abs=1e-6)
