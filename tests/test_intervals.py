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


def _voice_study(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Six voices of 33 utterances, each voice with its own error-rate scale and its own system / baseline
    ratio around 1.1 (SD 0.15): the test data's independent units are the six voices."""
    voices = np.repeat(np.arange(6), 33)
    words = rng.integers(4, 16, size=voices.size)
    rate = rng.beta(2.0, 8.0, size=voices.size) * np.exp(rng.normal(0.0, 0.3, size=6))[voices]
    ratio = (1.1 + rng.normal(0.0, 0.15, size=6))[voices]
    shared = rng.normal(0.0, 0.05, size=(3, 1))
    factor_base = np.clip(1.0 + shared + rng.normal(0.0, 0.05, size=(3, 1)), 0.05, None)
    factor_sys = np.clip(ratio + shared + rng.normal(0.0, 0.05, size=(3, 1)), 0.05, None)
    return (rng.binomial(words, np.clip(rate * factor_sys, 0, 1)), rng.binomial(words, np.clip(rate * factor_base, 0, 1)),
            words, voices)


def test_intervals_over_six_voices_cover_about_95_percent_with_the_test_parts_own_degrees_of_freedom() -> None:
    """The population's relative difference is E[ratio] - 1 = 10 % (rate and ratio independent)."""
    rng = np.random.default_rng(5)
    covered = 0
    for study in range(300):
        system, baseline, words, voices = _voice_study(rng)
        difference = seeded_paired_bootstrap(system, baseline, words, BootstrapSettings(300, 0.95, study, 20),
                                             clusters=voices, paired_seeds=True)
        low, high = difference.ci_rel_pct
        covered += low <= 10.0 <= high
    assert 0.92 <= covered / 300 <= 0.99, f"{covered / 300:.3f} of 300 intervals over 6 voices cover the truth"


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
