"""The two-level interval's coverage, by simulation on synthetic studies whose true difference is known:
three training seeds (paired) and a test set drawn from a population of utterances, as the study has."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from omni.results.bootstrap import BootstrapSettings, seeded_paired_bootstrap, student_t_quantile
from omni.results.primary import Endpoint, over_dense

SETTINGS = BootstrapSettings(resamples=300, confidence=0.95, seed=7, min_speakers=20)
STUDIES = 400


def _study(rng: np.random.Generator, seeds: int, utterances: int, seed_sd: float) -> tuple[np.ndarray, ...]:
    """Errors of a baseline and of a system 10 % worse in expectation: every utterance has its own error
    rate (Beta), every training seed scales each system's rates by its own factor (a seed shared by both
    arms plus each arm's own part, `seed_sd`), errors are binomial in each utterance's words."""
    words = rng.integers(4, 16, size=utterances)
    rate = rng.beta(2.0, 8.0, size=utterances)  # population mean 0.2
    shared = rng.normal(0.0, seed_sd, size=(seeds, 1))
    factor_base = np.clip(1.0 + shared + rng.normal(0.0, seed_sd, size=(seeds, 1)), 0.05, None)
    factor_sys = np.clip(1.1 + shared + rng.normal(0.0, seed_sd, size=(seeds, 1)), 0.05, None)
    baseline = rng.binomial(words, np.clip(rate * factor_base, 0, 1))
    system = rng.binomial(words, np.clip(rate * factor_sys, 0, 1))
    return system, baseline, words


@pytest.mark.parametrize("seed_sd, label", [(0.08, "seeds dominate"), (0.0, "test data alone")])
def test_95_percent_intervals_cover_the_true_difference_about_95_percent_of_the_time(
    seed_sd: float, label: str
) -> None:
    rng = np.random.default_rng(11)
    true_rel = 10.0  # E[system] / E[baseline] - 1: the seed factors average 1.1 and 1.0 (clipping aside)
    covered = widths = 0.0
    for study in range(STUDIES):
        system, baseline, words = _study(rng, 3, 200, seed_sd)
        difference = seeded_paired_bootstrap(
            system, baseline, words, BootstrapSettings(300, 0.95, study, 20), paired_seeds=True
        )
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
    return (
        rng.binomial(words, np.clip(rate * factor_sys, 0, 1)),
        rng.binomial(words, np.clip(rate * factor_base, 0, 1)),
        words,
        voices,
    )


def test_intervals_over_six_voices_cover_about_95_percent_with_the_test_parts_own_degrees_of_freedom() -> None:
    """The population's relative difference is E[ratio] - 1 = 10 % (rate and ratio independent)."""
    rng = np.random.default_rng(5)
    covered = 0
    for study in range(300):
        system, baseline, words, voices = _voice_study(rng)
        difference = seeded_paired_bootstrap(
            system, baseline, words, BootstrapSettings(300, 0.95, study, 20), clusters=voices, paired_seeds=True
        )
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
    system = baseline + np.array([[0], [1], [2]])  # per-seed differences 0, 0.1, 0.2 WER; no test noise
    difference = seeded_paired_bootstrap(system, baseline, words, SETTINGS, paired_seeds=True)
    assert difference.seed_diffs_abs == pytest.approx((0.0, 0.1, 0.2))
    assert difference.seed_diffs_rel_pct == pytest.approx((0.0, 50.0, 100.0))
    assert difference.degrees_of_freedom == pytest.approx(2.0)
    half = 4.302653 * 0.1 / math.sqrt(3)  # t(2) x SD / sqrt(n)
    assert difference.ci_abs == pytest.approx((0.1 - half, 0.1 + half), abs=1e-6)


@pytest.mark.parametrize("dense_models", [2, 3])
def test_the_interval_over_dense_models_covers_the_between_dense_component(dense_models: int) -> None:
    """Each dense model shifts the true difference by its own effect (SD 4 points) and its estimate carries
    its seeds' and test data's noise (SD 3): the t interval on the estimates covers the mean effect about 95 %
    of the time; one dense model's own interval, blind to the between-dense part, covers far less."""
    rng = np.random.default_rng(5)
    template = Endpoint(
        split="test-other",
        levels=("0.5",),
        seeds=3,
        unit="6 voices",
        omni_wer=0.5,
        individual_wer=0.5,
        abs_diff=0.0,
        rel_diff_pct=0.0,
        ci_rel_pct=(0.0, 0.0),
        one_sided=(0.0, 0.0),
        seed_rel_diffs_pct=(),
        degrees_of_freedom=2.0,
        test_resolves_rel_pct=5.0,
        utterances=200,
    )
    true_rel, within_sd, between_sd, trials = 5.0, 3.0, 4.0, 4000
    covered = own_covered = 0
    for _ in range(trials):
        estimates = true_rel + rng.normal(0, between_sd, dense_models) + rng.normal(0, within_sd, dense_models)
        combined = over_dense(
            "test-other",
            [(seed, replace(template, rel_diff_pct=float(value))) for seed, value in enumerate(estimates)],
            0.95,
        )
        low, high = combined.ci_rel_pct
        covered += low <= true_rel <= high
        half = 1.96 * within_sd  # the first dense model's own interval: its seeds and test data only
        own_covered += abs(estimates[0] - true_rel) <= half
    assert 0.935 <= covered / trials <= 0.965
    assert own_covered / trials < 0.85
