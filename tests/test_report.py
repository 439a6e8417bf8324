"""Report stage: bootstrap, cost accounting, tables and figures on fixture result trees.

The fixtures reproduce the upstream formats exactly: evaluation summaries and per-utterance
TSVs as omni.jobs.evaluation writes them, cost records as omni.costs.CostMeter.finish writes
them, Snakemake benchmark TSVs, training logs as omni.asr.trainer writes them.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import textwrap
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from omni.arms import arm_kind, arm_order
from omni.costs import CostRecord
from omni.data.voices import Voices
from omni.results import accounting, cost_tables, strategy_tables, wer_tables
from omni.results.bootstrap import (
    BootstrapSettings,
    paired_bootstrap,
    seeded_paired_bootstrap,
    student_t_quantile,
    wer_interval,
)
from omni.results.formatting import SIGNIFICANT_MARK
from omni.study import Study, seed_of_path
from tests.conftest import smoke_config

REPO = Path(__file__).resolve().parent.parent
SPLITS = ["dev", "test-clean", "test-other"]
DECODES = ["greedy-full", "greedy-streaming"]
TABLE_DECODE = "greedy-streaming"
SETTINGS = BootstrapSettings(resamples=1000, confidence=0.95, seed=7, min_speakers=20)
UTTERANCES = 80
DENSE_SEED = 1234
SEEDS = (1234, 1235)  # training seeds of the pruning arms and the control
SPEAKERS = {"dev": 4, "test-clean": 4, "test-other": 20}  # test-other has enough to resample speakers
PARAMS_TOTAL = 4_000_000
PRUNABLE_TOTAL = 3_000_000
LEVELS = (0.5, 0.7, 0.9)
PAIRS = {"omni": "individual", "omni-kd": "individual-kd"}  # omni arm -> the individual arm with its teacher
OWN_DENSE = [{"dense_seed": DENSE_SEED, "omni": "omni", "individual": "individual"}]  # job_params.dense_comparisons
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_FIGURE_BYTES = 10_000  # a figure with axes, curves and text; an empty canvas is far smaller
BENCHMARK_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


# ---------------------------------------------------------------- fixtures


def _reference_words(split: str) -> np.ndarray:
    return np.random.default_rng(_split_seed(split)).integers(3, 13, size=UTTERANCES)


def _split_seed(split: str) -> int:
    return SPLITS.index(split)


def _utt_ids(split: str) -> list[str]:
    """LibriSpeech-style `<speaker>-<chapter>-<utterance>` ids, SPEAKERS[split] speakers."""
    return [f"{i % SPEAKERS[split]}-1-{i:04d}" for i in range(UTTERANCES)]


def _errors(arm: str, sparsity: float, split: str, words: np.ndarray, seed: int = DENSE_SEED) -> np.ndarray:
    """Designed so the comparison has known outcomes, in every training seed.

    individual s: binomial errors growing with sparsity; a later seed adds an error on every
    7th utterance (seed noise). omni s0.5: identical to individual (difference exactly 0). omni
    s0.7: individual minus one error on a few utterances (small). omni s0.9: half the individual
    errors (clearly better, CI excludes zero).
    """
    rng = np.random.default_rng(int(1000 * sparsity) + _split_seed(split))
    individual = rng.binomial(words, 0.1 + 0.3 * sparsity) + (seed - DENSE_SEED) * (np.arange(len(words)) % 7 == 0)
    if arm in ("individual", "dense"):
        return individual
    if arm == "individual-kd":  # a variant with a teacher: one error fewer on every 5th utterance
        return np.maximum(0, individual - (np.arange(len(words)) % 5 == 0))
    if arm == "control":  # the dense model trained on: better than dense (dense had not converged)
        return np.maximum(0, individual - 1)
    if sparsity == 0.5:
        return individual
    if sparsity == 0.7:
        fewer = individual.copy()
        fewer[:3] = np.maximum(0, fewer[:3] - 1)
        return fewer
    return individual // 2


def _write_model_eval(root: Path, arm: str, tag: str, sparsity: float, seed: int) -> None:
    kept_prunable = int(round(PRUNABLE_TOTAL * (1 - sparsity)))
    kept = PARAMS_TOTAL - PRUNABLE_TOTAL + kept_prunable
    for split in SPLITS:
        words = _reference_words(split)
        errors = _errors(arm, sparsity, split, words, seed)
        folder = root / "eval" / arm / f"seed{seed}" / tag / split
        folder.mkdir(parents=True)
        decodes = {}
        for offset, decode in enumerate(DECODES):
            deletions = np.minimum(errors, offset)  # decodes differ a little, all from the same counts
            table = pd.DataFrame(
                {
                    "utt_id": _utt_ids(split),
                    "reference": "A B C",
                    "hypothesis": "",
                    "substitutions": errors - deletions,
                    "deletions": deletions,
                    "insertions": 0,
                    "ref_words": words,
                    "char_errors": 2 * errors,
                    "ref_chars": 5 * words,
                }
            )
            table.to_csv(folder / f"{decode}.tsv", sep="\t", index=False)
            decodes[decode] = {
                "wer": errors.sum() / words.sum(),
                "cer": 0.4 * errors.sum() / words.sum(),
                "utterances": UTTERANCES,
                "words": int(words.sum()),
                "decode_seconds": 1.0,
                "audio_seconds": 100.0,
                "rtf": 0.01,
            }
        summary = {
            "arm": arm,
            "seed": seed,
            "tag": tag,
            "sparsity": sparsity,
            "split": split,
            "params_total": PARAMS_TOTAL,
            "params_kept": kept,
            "prunable_total": PRUNABLE_TOTAL,
            "prunable_kept": kept_prunable,
            "export_bytes_fp32": 8 * kept,
            "export_bytes_fp16": 6 * kept,
            "decodes": decodes,
        }
        (folder / "summary.json").write_text(json.dumps(summary))


def _write_cost(path: Path, **fields) -> None:
    record = CostRecord(**fields)
    payload = asdict(record)
    payload["device_hours"] = record.device_hours
    payload["device_hours_unit"] = "GPU-hours" if record.device_kind == "cuda" else "CPU core-hours"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def _write_benchmark(path: Path, wall_s: float, cpu_time: float | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BENCHMARK_HEADER + f"{wall_s}\t0:00:00\t500.0\t900.0\t480.0\t490.0\t1.0\t2.0\t1.5\t{cpu_time}\n")


def _write_train_log(path: Path, steps: int, start_loss: float) -> None:
    step = np.arange(1, steps + 1)
    loss = start_loss * np.exp(-step / steps) + 0.05 * np.sin(step)
    frame = pd.DataFrame({"step": step, "loss": loss, "lr": 1e-3, "audio_seconds": 10.0 * step, "wall_s": 2.0 * step})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


CPU = dict(device_kind="cpu", device_name="Fixture Xeon", device_count=1, processes=1)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete result tree: dense, and per seed the control, 3 levels x 4 arms (individual, omni and a
    variant of each: individual-kd, omni-kd) and one searched model; costs, logs. The second seed's jobs
    took twice as long (the headline is a mean per seed)."""
    root = tmp_path_factory.mktemp("results")
    (root / "data").mkdir()
    (root / "data/voices.tsv").write_text("utt_id\tspeaker\tvoice\n")  # utterances read as LibriSpeech ids
    _write_model_eval(root, "dense", "dense", 0.0, DENSE_SEED)
    models = root / "models"
    _write_cost(
        models / f"dense/seed{DENSE_SEED}/dense/cost.json",
        job="train_dense",
        arm="dense",
        sparsity=None,
        threads=2,
        wall_s=3600.0,
        steps=900,
        audio_hours=5.0,
        peak_mem_mb=2000.0,
        **CPU,
    )
    _write_train_log(models / f"dense/seed{DENSE_SEED}/dense/train_log.csv", 900, 3.0)
    for run, seed in enumerate(SEEDS, start=1):
        _write_model_eval(root, "control", "continued", 0.0, seed)
        for level in LEVELS:
            for arm in ("individual", "individual-kd", "omni", "omni-kd"):
                _write_model_eval(root, arm, f"s{level:g}", level, seed)
        _write_model_eval(root, "omni-searched", "b0.7", 0.69, seed)
        per_seed = models / "{arm}" / f"seed{seed}" / "{tag}" / "cost.json"
        for level in LEVELS:
            _write_cost(
                Path(str(per_seed).format(arm="individual", tag=f"s{level:g}")),
                job="train_individual",
                arm="individual",
                sparsity=level,
                threads=2,
                wall_s=run * 1800.0,
                steps=300,
                audio_hours=1.5,
                peak_mem_mb=1900.0,
                **CPU,
            )
            _write_cost(
                Path(str(per_seed).format(arm="individual-kd", tag=f"s{level:g}")),
                job="train_individual",
                arm="individual-kd",
                sparsity=level,
                threads=2,
                wall_s=run * 2160.0,
                steps=300,
                audio_hours=1.5,
                peak_mem_mb=1900.0,
                **CPU,
            )
            for arm in ("omni", "omni-kd"):
                _write_cost(
                    Path(str(per_seed).format(arm=arm, tag=f"s{level:g}")),
                    job="extract_omni",
                    arm=arm,
                    sparsity=level,
                    threads=1,
                    wall_s=run * 36.0,
                    peak_mem_mb=800.0,
                    **CPU,
                )
            _write_train_log(models / f"individual/seed{seed}/s{level:g}/train_log.csv", 300, 1.0 + level)
        _write_cost(
            Path(str(per_seed).format(arm="omni", tag="supernet")),
            job="train_omni",
            arm="omni",
            sparsity=None,
            threads=2,
            wall_s=run * 2700.0,
            steps=300,
            subnet_passes=600,
            audio_hours=1.5,
            peak_mem_mb=2100.0,
            **CPU,
        )
        _write_cost(
            Path(str(per_seed).format(arm="omni-kd", tag="supernet")),
            job="train_omni",
            arm="omni-kd",
            sparsity=None,
            threads=2,
            wall_s=run * 2106.0,
            steps=300,
            subnet_passes=300,
            audio_hours=1.5,
            peak_mem_mb=2100.0,
            **CPU,
        )
        _write_train_log(models / f"omni/seed{seed}/supernet/train_log.csv", 300, 2.0)
    _write_cost(
        root / f"search/omni/seed{SEEDS[0]}/cost.json",
        job="search",
        arm="omni-searched",
        sparsity=None,
        device_kind="cuda",
        device_name="NVIDIA Fixture GPU",
        device_count=1,
        threads=4,
        wall_s=7200.0,
        peak_mem_mb=9000.0,
    )
    _write_cost(
        root / f"eval/omni/seed{SEEDS[0]}/s0.7/dev/cost.json",
        job="evaluate",
        arm="omni",
        sparsity=0.7,
        threads=2,
        wall_s=360.0,
        audio_hours=0.1,
        **CPU,
    )
    bench = root / "benchmarks"
    _write_benchmark(bench / "build_corpus.tsv", 100.0, 180.0)
    _write_benchmark(bench / "manifest/dev.tsv", 10.0, "NA")
    _write_benchmark(bench / "train_dense" / f"seed{DENSE_SEED}.tsv", 3700.0, 7300.0)
    _write_benchmark(bench / "accounting.tsv", 5.0, 5.0)  # the report's own rules are left out
    _write_benchmark(bench / "train_individual/seed1234/s0.6.tsv", 999.0, 999.0)  # left by an earlier configuration
    return root


def _summary_paths(root: Path) -> list[Path]:
    return sorted((root / "eval").rglob("summary.json"))


def _study_benchmarks(root: Path) -> list[Path]:
    """The benchmark files of the fixture study's jobs (omni.study lists them; one never ran)."""
    return [
        root / "benchmarks" / name
        for name in ("build_corpus.tsv", "manifest/dev.tsv", f"train_dense/seed{DENSE_SEED}.tsv", "manifest/train.tsv")
    ]


def _cost_paths(root: Path) -> list[Path]:
    return sorted(root.rglob("cost.json"))


# ---------------------------------------------------------------- bootstrap


@pytest.mark.parametrize(
    "arm, kind",
    [
        ("dense", "dense"),
        ("control", "control"),
        ("individual", "individual"),
        ("individual-kd", "individual"),
        ("omni-kd-lw", "omni"),
        ("omni-searched", "searched"),
        ("omni-kd-layerwise-searched", "searched"),
        ("seed1234", None),
        ("s0.7", None),
        ("dense-x", None),
    ],
)
def test_an_arm_name_says_its_kind(arm: str, kind: str | None) -> None:
    assert arm_kind(arm) == kind


def test_arms_are_ordered_by_kind_the_studys_own_arm_first() -> None:
    arms = [
        "omni-kd-searched",
        "omni-kd",
        "individual-kd",
        "omni-searched",
        "omni",
        "control",
        "individual",
        "dense",
        "omni-inplace",
    ]
    assert sorted(arms, key=arm_order) == [
        "dense",
        "control",
        "individual",
        "individual-kd",
        "omni",
        "omni-inplace",
        "omni-kd",
        "omni-searched",
        "omni-kd-searched",
    ]


def test_identical_systems_have_zero_difference_and_a_ci_containing_zero() -> None:
    words = np.random.default_rng(0).integers(3, 15, size=200)
    errors = np.random.default_rng(1).binomial(words, 0.2)
    difference = paired_bootstrap(errors, errors, words, SETTINGS)
    assert difference.diff_abs == 0.0 and difference.diff_rel_pct == 0.0
    assert difference.ci_abs == (0.0, 0.0) and not difference.excludes_zero


def test_doubled_errors_give_exactly_known_differences() -> None:
    """system = 2 x baseline on every utterance: relative +100 % in every resample; the absolute
    difference equals the baseline's WER in every resample, so its CI is the baseline's WER CI."""
    words = np.random.default_rng(2).integers(3, 15, size=300)
    baseline = np.random.default_rng(3).binomial(words, 0.15)
    difference = paired_bootstrap(2 * baseline, baseline, words, SETTINGS)
    wer = baseline.sum() / words.sum()
    assert difference.diff_abs == pytest.approx(wer)
    assert difference.diff_rel_pct == pytest.approx(100.0)
    assert difference.ci_rel_pct == pytest.approx((100.0, 100.0))
    assert difference.ci_abs == pytest.approx(wer_interval(baseline, words, SETTINGS))
    assert difference.excludes_zero
    low, high = difference.ci_abs
    assert low < wer < high


def test_bootstrap_is_seeded_and_uses_the_configured_resamples() -> None:
    words = np.full(50, 10)
    a = np.random.default_rng(4).binomial(words, 0.3)
    b = np.random.default_rng(5).binomial(words, 0.3)
    assert paired_bootstrap(a, b, words, SETTINGS) == paired_bootstrap(a, b, words, SETTINGS)
    other_seed = replace(SETTINGS, seed=SETTINGS.seed + 1)
    assert paired_bootstrap(a, b, words, other_seed).ci_abs != paired_bootstrap(a, b, words, SETTINGS).ci_abs
    assert paired_bootstrap(a, b, words, SETTINGS).resamples == SETTINGS.resamples


def test_seeds_that_agree_give_the_utterance_bootstrap_and_seeds_that_differ_widen_the_interval() -> None:
    words = np.random.default_rng(6).integers(3, 15, size=120)
    system = np.random.default_rng(7).binomial(words, 0.25)
    baseline = np.random.default_rng(8).binomial(words, 0.2)
    one_run = paired_bootstrap(system, baseline, words, SETTINGS)
    agreeing = seeded_paired_bootstrap(
        np.vstack([system] * 3), np.vstack([baseline] * 3), words, SETTINGS, paired_seeds=True
    )
    assert agreeing.ci_abs == pytest.approx(one_run.ci_abs) and agreeing.diff_abs == pytest.approx(one_run.diff_abs)
    # the system's seeds scatter around the same mean: the point estimate stays, the interval widens
    scatter = np.vstack([system + 2, system, np.maximum(system - 2, 0)])
    seeded = seeded_paired_bootstrap(scatter, np.vstack([baseline] * 3), words, SETTINGS, paired_seeds=True)
    mean_as_one_run = paired_bootstrap(scatter.mean(axis=0), baseline, words, SETTINGS)
    assert seeded.diff_abs == pytest.approx(mean_as_one_run.diff_abs)
    width = lambda difference: difference.ci_abs[1] - difference.ci_abs[0]  # noqa: E731
    assert width(seeded) > 1.2 * width(mean_as_one_run)
    with pytest.raises(ValueError, match="paired seeds"):
        seeded_paired_bootstrap(scatter, baseline[None], words, SETTINGS, paired_seeds=True)


def test_speaker_bootstrap_keeps_a_speakers_utterances_together() -> None:
    """One speaker per utterance is the utterance bootstrap; correlated speakers widen the interval."""
    words = np.full(200, 10)
    speaker_effect = np.repeat(np.random.default_rng(9).integers(0, 6, size=20), 10)  # 20 speakers x 10 utts
    system, baseline = speaker_effect + 1, np.zeros(200, dtype=int) + 1
    by_utterance = paired_bootstrap(system, baseline, words, SETTINGS)
    assert paired_bootstrap(system, baseline, words, SETTINGS, clusters=np.arange(200)) == by_utterance
    by_speaker = paired_bootstrap(system, baseline, words, SETTINGS, clusters=np.repeat(np.arange(20), 10))
    assert by_speaker.diff_abs == pytest.approx(by_utterance.diff_abs)
    assert by_speaker.ci_abs[1] - by_speaker.ci_abs[0] > 1.5 * (by_utterance.ci_abs[1] - by_utterance.ci_abs[0])


def test_bootstrap_rejects_inputs_without_words() -> None:
    with pytest.raises(ValueError, match="no reference words"):
        wer_interval([0, 0], [0, 0], SETTINGS)


# ---------------------------------------------------------------- accounting


def test_accounting_sums_core_hours_and_keeps_gpu_hours_apart(results: Path) -> None:
    account = accounting.collect(
        _cost_paths(results), _study_benchmarks(results), results / "benchmarks", results, PAIRS
    )
    jobs = account.jobs
    assert set(jobs["unit"]) == {"CPU core-hours", "GPU-hours"}
    dense = jobs[jobs["rule"] == "train_dense"].iloc[0]
    assert dense["device_hours"] == pytest.approx(3600.0 * 2 / 3600.0)
    assert dense["device"] == "cpu (Fixture Xeon)"
    search = jobs[jobs["rule"] == "search"].iloc[0]
    assert (search["unit"], search["device"], search["device_hours"]) == ("GPU-hours", "NVIDIA Fixture GPU", 2.0)
    # benchmark-only rules fill in; rules with a record are not double counted; the report's own are left out
    corpus = jobs[jobs["rule"] == "build_corpus"].iloc[0]
    assert (corpus["stage"], corpus["wall_s"], corpus["device_hours"]) == ("data", 100.0, pytest.approx(0.05))
    assert np.isnan(jobs.loc[jobs["rule"] == "manifest", "device_hours"].iloc[0])
    assert (jobs["rule"] == "train_dense").sum() == 1 and "accounting" not in set(jobs["rule"])
    assert "s0.6.tsv" not in " ".join(jobs["source"]), "a file of another configuration counted"
    assert set(jobs.loc[jobs["rule"] == "train_individual", "seed"]) == set(SEEDS)
    assert jobs.loc[jobs["rule"] == "train_dense", "seed"].iloc[0] == DENSE_SEED
    assert np.isnan(jobs.loc[jobs["rule"] == "build_corpus", "seed"].iloc[0])

    totals = account.totals.set_index(["stage", "unit"])
    all_seeds = 1 + 2  # the second seed's jobs took twice as long
    assert totals.at[("individual", "CPU core-hours"), "device_hours"] == pytest.approx(
        3 * all_seeds * (1800.0 + 2160.0) * 2 / 3600.0
    )  # every individual arm: individual and individual-kd
    assert totals.at[("omni", "CPU core-hours"), "device_hours"] == pytest.approx(
        all_seeds * (1.5 + 3 * 0.01) + all_seeds * (2106.0 * 2 + 3 * 36.0) / 3600.0
    )
    assert totals.at[("search", "GPU-hours"), "device_hours"] == pytest.approx(2.0)
    assert ("search", "CPU core-hours") not in totals.index
    assert totals.at[("data", "CPU core-hours"), "jobs"] == 2

    headline = account.headline.set_index("item")  # per training seed: the mean over the two seeds
    assert headline.at["individual", "models"] == 3 and headline.at["omni", "models"] == 3
    assert headline.at["individual", "seeds"] == 2 and headline.at["dense (shared)", "seeds"] == 1
    assert headline.at["individual", "device_hours"] == pytest.approx(3.0 * all_seeds / 2)
    assert headline.at["individual / omni", "device_hours"] == pytest.approx(3.0 / 1.53)
    assert headline.at["dense (shared)", "device_hours"] == pytest.approx(2.0)
    assert set(account.headline["unit"]) == {"CPU core-hours"}  # the GPU search is no part of K models
    # one training job per arm, next to one job of its paired individual arm (omni-kd <-> individual-kd)
    arms = account.arms.set_index("arm")
    assert arms.at["individual", "jobs"] == 3 and arms.at["omni-kd", "jobs"] == 1
    assert arms.at["individual", "job_device_hours"] == pytest.approx(1.5)  # (1 + 2) x 1800 s x 2 threads / 2 seeds
    assert arms.at["omni-kd", "paired_individual"] == "individual-kd"
    # supernet (2 threads) + 3 extractions (1 thread) cost one individual-kd job: 2106 x 2 + 3 x 36 = 2160 x 2
    assert arms.at["omni-kd", "vs_one_individual_job"] == pytest.approx(1.0)
    assert arms.at["omni-kd", "vs_individual_arm"] == pytest.approx(1.0 / 3)
    assert arms.at["omni", "vs_one_individual_job"] == pytest.approx(1.53)  # 2700 x 2 + 3 x 36 over 1800 x 2

    check = account.crosscheck.set_index("rule")
    assert check.at["train_dense", "benchmark_over_record"] == pytest.approx(3700.0 / 3600.0)


def test_accounting_refuses_a_record_whose_unit_contradicts_its_device(tmp_path: Path) -> None:
    path = tmp_path / "cost.json"
    _write_cost(path, job="train_dense", arm="dense", sparsity=None, wall_s=1.0, **CPU)
    record = json.loads(path.read_text())
    record["device_hours_unit"] = "GPU-hours"
    path.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="does not match"):
        accounting.load_cost_records([path], tmp_path)


# ---------------------------------------------------------------- tables


@pytest.fixture(scope="module")
def written_tables(results: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("tables")
    outputs = {
        key: out / name
        for key, name in [
            ("wer_csv", "wer.csv"),
            ("wer_md", "wer.md"),
            ("sparsity_csv", "wer_vs_sparsity.csv"),
            ("sparsity_md", "wer_vs_sparsity.md"),
            ("sparsity_tex", "wer_vs_sparsity.tex"),
        ]
    }
    wer_tables.write_wer_tables(_summary_paths(results), SPLITS, DECODES, TABLE_DECODE, SETTINGS, outputs)
    return outputs


def test_wer_table_has_every_model_split_and_decode(written_tables: dict[str, Path], results: Path) -> None:
    wer = pd.read_csv(written_tables["wer_csv"])
    assert list(wer.columns) == wer_tables.WER_COLUMNS
    runs = 1 + len(SEEDS) * (1 + 4 * len(LEVELS) + 1)
    assert len(wer) == runs * len(SPLITS) * len(DECODES)
    assert list(wer["arm"].drop_duplicates()) == [
        "dense",
        "control",
        "individual",
        "individual-kd",
        "omni",
        "omni-kd",
        "omni-searched",
    ]
    row = wer[
        (wer["arm"] == "omni")
        & (wer["tag"] == "s0.9")
        & (wer["split"] == "test-other")
        & (wer["decode"] == TABLE_DECODE)
        & (wer["seed"] == SEEDS[1])
    ].iloc[0]
    summary = json.loads((results / f"eval/omni/seed{SEEDS[1]}/s0.9/test-other/summary.json").read_text())
    assert row["wer"] == pytest.approx(summary["decodes"][TABLE_DECODE]["wer"])
    assert row["params_kept"] == summary["params_kept"]
    assert "| arm" in written_tables["wer_md"].read_text()


def mean_wer(errors: np.ndarray, words: np.ndarray) -> float:
    """Seed-mean corpus WER of (seeds, utterances) error counts: each seed's errors over its words."""
    return float((errors.sum(axis=1) / words.sum()).mean())


def linearized_interval(
    system: np.ndarray,
    baseline: np.ndarray,
    words: np.ndarray,
    clusters: np.ndarray,
    paired: bool = True,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """The two-level interval of a seed-mean WER difference worked out in closed form, not by resampling: the
    cluster bootstrap's variance of D* = sum(d*) / sum(w*) over k resampled clusters is, to first order,
    var(d_c - D w_c) / (k mean(w_c)^2) (the delta method), scaled by k / (k - 1); the seed part is the sample
    variance of the per-seed differences over their count (paired) or of each side's runs (Welch); Welch-
    Satterthwaite degrees of freedom for the t quantile."""
    ids = np.unique(clusters)

    def per_cluster(runs: np.ndarray) -> np.ndarray:
        return np.stack([runs[:, clusters == c].sum(axis=1) for c in ids], axis=1).mean(axis=0)

    cluster_words = np.array([words[clusters == c].sum() for c in ids], dtype=float)
    k = len(ids)
    diff = (per_cluster(system) - per_cluster(baseline)).sum() / cluster_words.sum()
    residual = per_cluster(system) - per_cluster(baseline) - diff * cluster_words
    parts = [((residual**2).sum() / (k - 1) / (k * cluster_words.mean() ** 2), k - 1)]
    rates = lambda runs: runs.sum(axis=1) / words.sum()  # noqa: E731
    groups = [rates(system) - rates(baseline)] if paired else [rates(system), rates(baseline)]
    parts += [(group.var(ddof=1) / len(group), len(group) - 1) for group in groups if len(group) > 1]
    variance = sum(part for part, _ in parts)
    dof = variance**2 / sum(part**2 / df for part, df in parts if part > 0)
    half = student_t_quantile(0.5 + confidence / 2, dof) * math.sqrt(variance)
    return diff - half, diff + half


def assert_interval_close(low: float, high: float, expected: tuple[float, float], tolerance: float = 0.05) -> None:
    """Within `tolerance` of the expected half-width at both ends: 1000 resamples estimate the variance to
    about +-4.5 %, the half-width to +-2.2 %; a missing seed part or a normal quantile for t(1) misses by far more."""
    half = (expected[1] - expected[0]) / 2
    assert abs(low - expected[0]) < tolerance * half and abs(high - expected[1]) < tolerance * half, (
        (low, high),
        expected,
    )


def test_sparsity_table_numbers_and_significance_marks(written_tables: dict[str, Path], results: Path) -> None:
    table = pd.read_csv(written_tables["sparsity_csv"])
    assert list(table["tag"]) == ["dense", "s0.5", "s0.7", "s0.9", "b0.7"]
    by_tag = table.set_index("tag")
    words = _reference_words("test-other")
    speakers = np.array([utt_id.split("-")[0] for utt_id in _utt_ids("test-other")])

    def runs(arm: str, sparsity: float, seeds: tuple[int, ...] = SEEDS) -> np.ndarray:
        return np.vstack([_errors(arm, sparsity, "test-other", words, seed) for seed in seeds])

    individual, omni = runs("individual", 0.9), runs("omni", 0.9)
    row = by_tag.loc["s0.9"]
    # per arm: the mean over the two seeds and their spread; test-other resamples its 20 speakers
    assert row["test-other/individual_wer"] == pytest.approx(mean_wer(individual, words))
    assert row["test-other/individual_wer_sd"] > 0 and row["test-other/individual_seeds"] == len(SEEDS)
    assert np.isnan(by_tag.at["dense", "test-other/individual_wer_sd"])
    assert row["test-other/bootstrap_unit"] == "20 speakers" and row["dev/bootstrap_unit"] == "utterances"
    relative = 100 * (mean_wer(omni, words) - mean_wer(individual, words)) / mean_wer(individual, words)
    assert row["test-other/rel_diff_pct"] == pytest.approx(relative) and row["test-other/abs_diff"] == pytest.approx(
        mean_wer(omni, words) - mean_wer(individual, words)
    )
    assert_interval_close(
        row["test-other/abs_ci_low"],
        row["test-other/abs_ci_high"],
        linearized_interval(omni, individual, words, speakers),
    )
    assert row["test-other/omni_wer"] < row["test-other/individual_wer"] and row["test-other/excludes_zero"]
    assert by_tag.at["s0.5", "test-other/rel_diff_pct"] == 0.0 and not by_tag.at["s0.5", "test-other/excludes_zero"]
    assert np.isnan(by_tag.at["dense", "test-other/omni_wer"])
    # pruning damage against the dense-continued control; on the dense row, dense - control (convergence):
    # one dense model against two controls, so the seed part is the controls' spread alone
    control, dense = runs("control", 0.0), runs("dense", 0.0, (DENSE_SEED,))
    assert by_tag.at["dense", "test-other/individual_damage_abs_diff"] == pytest.approx(
        mean_wer(dense, words) - mean_wer(control, words)
    )
    assert mean_wer(dense, words) > mean_wer(control, words)
    assert_interval_close(
        by_tag.at["dense", "test-other/individual_damage_abs_ci_low"],
        by_tag.at["dense", "test-other/individual_damage_abs_ci_high"],
        linearized_interval(dense, control, words, speakers, paired=False),
    )
    searched, uniform = runs("omni-searched", 0.69), runs("omni", 0.7)
    assert by_tag.at["b0.7", "test-other/vs_uniform_rel_diff_pct"] == pytest.approx(
        100 * (mean_wer(searched, words) - mean_wer(uniform, words)) / mean_wer(uniform, words)
    )
    assert by_tag.at["b0.7", "test-other/uniform_omni_wer"] == by_tag.at["s0.7", "test-other/omni_wer"]
    assert np.isnan(by_tag.at["s0.7", "test-other/vs_uniform_rel_diff_pct"])
    assert by_tag.at["s0.9", "test-other/omni_damage_abs_diff"] == pytest.approx(
        mean_wer(omni, words) - mean_wer(control, words)
    )
    assert by_tag.at["s0.9", "test-other/control_wer"] == pytest.approx(mean_wer(control, words))
    # the searched model is compared with the individual model of its budget's sparsity
    assert by_tag.at["b0.7", "test-other/individual_wer"] == by_tag.at["s0.7", "test-other/individual_wer"]
    assert by_tag.at["b0.7", "sparsity"] == 0.69

    markdown = written_tables["sparsity_md"].read_text()
    s09 = next(line for line in markdown.splitlines() if line.startswith("| uniform") and "| 0.900 " in line)
    s05 = next(line for line in markdown.splitlines() if line.startswith("| uniform") and "| 0.500 " in line)
    assert s09.count(SIGNIFICANT_MARK) == len(SPLITS) and SIGNIFICANT_MARK not in s05

    assert "Pruning damage" in markdown and "dense - control" in markdown and " ± " in markdown
    assert "mean over 2 training seed(s)" in markdown and "test-other: 20 speakers" in markdown
    assert "vs uniform omni at the same level" in markdown
    latex = written_tables["sparsity_tex"].read_text()
    assert r"\label{tab:pruning-damage}" in latex
    assert r"\toprule" in latex and r"\bottomrule" in latex and r"\multicolumn{4}{c}{test-other}" in latex
    body = latex.split(r"\midrule", 1)[1]
    assert body.count(r"\\") >= len(table) and r"$^{*}$" in latex


def test_strategy_table_pairs_each_arm_with_the_individual_arm_of_its_teacher(results: Path, tmp_path: Path) -> None:
    account = accounting.collect(
        _cost_paths(results), _study_benchmarks(results), results / "benchmarks", results, PAIRS
    )
    cost_csv = tmp_path / "cost.csv"
    cost_tables.write_cost_tables(account, {"csv": cost_csv, "md": tmp_path / "cost.md", "tex": tmp_path / "cost.tex"})
    outputs = {"csv": tmp_path / "strategies.csv", "md": tmp_path / "strategies.md"}
    strategy_tables.write_strategy_tables(
        _summary_paths(results), cost_csv, SPLITS, TABLE_DECODE, SETTINGS, PAIRS, outputs
    )
    table = pd.read_csv(outputs["csv"])
    assert list(zip(table["level"], table["arm"]))[:5] == [
        (0.5, "individual"),
        (0.5, "individual-kd"),
        (0.5, "omni"),
        (0.5, "omni-kd"),
        (0.7, "individual"),
    ]
    assert len(table) == 4 * len(LEVELS) + 1 and (table["arm"] == "omni-searched").sum() == 1
    rows = table.set_index(["level", "arm"])
    words = _reference_words("test-other")

    def runs(arm: str, sparsity: float) -> np.ndarray:
        return np.vstack([_errors(arm, sparsity, "test-other", words, seed) for seed in SEEDS])

    def rel_diff(system: np.ndarray, baseline: np.ndarray) -> float:
        return 100 * (mean_wer(system, words) - mean_wer(baseline, words)) / mean_wer(baseline, words)

    # omni-kd is compared with individual-kd (both have the dense teacher), omni with individual
    assert rows.at[(0.9, "omni-kd"), "paired_individual"] == "individual-kd"
    assert rows.at[(0.9, "omni-kd"), "test-other/vs_individual_rel_diff_pct"] == pytest.approx(
        rel_diff(runs("omni-kd", 0.9), runs("individual-kd", 0.9))
    )
    assert rows.at[(0.9, "omni"), "test-other/vs_individual_rel_diff_pct"] == pytest.approx(
        rel_diff(runs("omni", 0.9), runs("individual", 0.9))
    )
    assert (
        rows.at[(0.9, "omni-kd"), "test-other/vs_individual_rel_diff_pct"]
        != rows.at[(0.9, "omni"), "test-other/vs_individual_rel_diff_pct"]
    ), "the teacher's pair is another comparison"
    assert np.isnan(rows.at[(0.9, "individual-kd"), "test-other/vs_individual_abs_diff"])
    assert rows.at[(0.7, "individual-kd"), "test-other/damage_abs_diff"] == pytest.approx(
        mean_wer(runs("individual-kd", 0.7), words) - mean_wer(runs("control", 0.0), words)
    )
    assert rows.at[(0.7, "individual-kd"), "test-other/arm_wer_sd"] > 0
    assert rows.at[(0.7, "omni-searched"), "test-other/vs_uniform_rel_diff_pct"] == pytest.approx(
        rel_diff(runs("omni-searched", 0.69), runs("omni", 0.7))
    )
    assert rows.at[(0.9, "omni-kd"), "job_vs_one_individual_job"] == pytest.approx(1.0)
    assert rows.at[(0.9, "omni-kd"), "job_vs_individual_arm"] == pytest.approx(1.0 / 3)
    markdown = outputs["md"].read_text()
    assert "### test-other" in markdown and "vs individual-kd" in markdown and "1.00x" in markdown


def test_table_decode_missing_from_the_summaries_is_a_config_error(results: Path, tmp_path: Path) -> None:
    outputs = {key: tmp_path / key for key in ("wer_csv", "wer_md", "sparsity_csv", "sparsity_md", "sparsity_tex")}
    with pytest.raises(ValueError, match="report.table_decode"):
        wer_tables.write_wer_tables(_summary_paths(results), SPLITS, DECODES, "beam-full", SETTINGS, outputs)


def test_cost_tables(results: Path, tmp_path: Path) -> None:
    account = accounting.collect(
        _cost_paths(results), _study_benchmarks(results), results / "benchmarks", results, PAIRS
    )
    outputs = {"csv": tmp_path / "cost.csv", "md": tmp_path / "cost.md", "tex": tmp_path / "cost.tex"}
    cost_tables.write_cost_tables(account, outputs)
    frame = pd.read_csv(outputs["csv"])
    assert set(frame["section"]) == {"job", "total", "headline", "arm"}
    assert (frame["section"] == "job").sum() == len(account.jobs)
    markdown = outputs["md"].read_text()
    assert "individual / omni = 1.96x" in markdown and "GPU-hours" in markdown and "mean over 2" in markdown
    latex = outputs["tex"].read_text()
    assert latex.count(r"\toprule") == 2 and "NVIDIA Fixture GPU" in latex
    jobs = cost_tables.read_cost_jobs(outputs["csv"])
    assert jobs["device_hours"].sum() == pytest.approx(account.jobs["device_hours"].sum())


# ---------------------------------------------------------------- the rules, run by Snakemake


WRAPPER = textwrap.dedent("""\
    # Stands in for the study's Snakefile: the fixture tree replaces every upstream stage, so the
    # study's models are the ones the fixture holds.
    import os
    import sys
    from pathlib import Path
    configfile: "config.yaml"
    os.environ["PYTHONPATH"] = "{repo}"
    sys.path.insert(0, "{repo}")
    include: "{repo}/rules/common.smk"
    from omni.study import COST_TABLES, FIGURES, STRATEGY_TABLES, WER_TABLES


    class FixtureStudy(type(STUDY)):
        def evaluated_models(self):
            return sorted({{(p.parts[-5], p.parts[-4].removeprefix("seed"), p.parts[-3])
                            for p in Path(R).glob("eval/*/*/*/*/summary.json")}})

        def trained_models(self):
            return sorted((p.parts[-4], p.parts[-3].removeprefix("seed"), p.parts[-2])
                          for p in Path(R).glob("models/*/*/*/train_log.csv"))

        def cost_records(self):
            return sorted(str(p) for p in Path(R).rglob("cost.json"))

        def benchmark_files(self):
            reporting = {{"wer_table.tsv", "accounting.tsv", "figures.tsv", "strategy_table.tsv"}}
            return sorted(str(p) for p in Path(R).glob("benchmarks/**/*.tsv")
                          if p.name not in reporting and "s0.6" not in p.name)


    STUDY = FixtureStudy(**vars(STUDY))
    include: "{repo}/rules/report.smk"
    rule all:
        input:
            [STUDY.table(name) for name in (*WER_TABLES, *COST_TABLES, *STRATEGY_TABLES)],
            [STUDY.figure(name) for name in FIGURES]
    """)


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "snakemake"), "--cores", "2", *args]
    run = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    if run.returncode != 0:
        logs = "\n".join(log.read_text() for log in sorted((workdir / "results/logs").rglob("*.log")))
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{run.stderr[-3000:]}\n{logs[-3000:]}")
    return run


def test_report_rules_run_build_a_report_and_rerun_on_report_config_only(results: Path, tmp_path: Path) -> None:
    shutil.copytree(results, tmp_path / "results")
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["evaluate"].update(splits=SPLITS, decodes=DECODES)
    config["report"]["table_decode"] = TABLE_DECODE
    config["variants"] = {
        "individual-kd": {"distill": {"individual": "dense"}},
        "omni-kd": {"distill": {"omni": "dense"}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "Snakefile").write_text(WRAPPER.format(repo=REPO))

    _snakemake(tmp_path, "--quiet")
    for name in [
        "tables/wer.csv",
        "tables/wer.md",
        "tables/wer_vs_sparsity.csv",
        "tables/wer_vs_sparsity.md",
        "tables/wer_vs_sparsity.tex",
        "tables/cost.csv",
        "tables/cost.md",
        "tables/cost.tex",
        "tables/strategies.csv",
        "tables/strategies.md",
        "tables/primary.csv",
        "tables/primary.md",
    ]:
        assert (tmp_path / "results" / name).stat().st_size > 0, name
    for name in ["pareto.png", "training_curves.png", "cost.png"]:
        png = (tmp_path / "results/figures" / name).read_bytes()
        assert png.startswith(PNG_SIGNATURE) and len(png) > MIN_FIGURE_BYTES, name
    assert "individual / omni = 1.96x" in (tmp_path / "results/logs/report/accounting.log").read_text()

    _snakemake(tmp_path, "--report", "report.html")
    html = (tmp_path / "report.html").read_text()
    # captions are found and their Jinja placeholders filled from the rules' params
    assert "Claim 1 of the paper" in html and "Claim 2 of the paper" in html and "snakemake.params" not in html
    assert "Every pruning arm side by side" in html and "The primary endpoint, declared before any result" in html
    assert f"({config['report']['bootstrap_resamples']} resamples" in html

    changed = dict(config["report"], bootstrap_seed=config["report"]["bootstrap_seed"] + 1)
    planned = _snakemake(tmp_path, "--dry-run", "--config", f"report={json.dumps(changed)}").stdout
    job_stats = planned.split("Job stats:")[1].split("total")[0]
    assert "wer_table" in job_stats and "figures" in job_stats and "accounting" not in job_stats


@pytest.mark.parametrize(
    ("teachers", "says"),
    [
        ({"individual": "dense", "omni": "dense", "control": "dense"}, "Both arms learn from the same teacher"),
        ({"individual": "none", "omni": "none", "control": "none"}, "No arm learns from a teacher"),
        ({"individual": "none", "omni": "inplace", "control": "none"}, "no arm has an external teacher"),
        ({"individual": "none", "omni": "dense", "control": "none"}, "Teachers differ"),
        ({"individual": "dense", "omni": "dense", "control": "dense"}, "a damage column is what pruning costs"),
        ({"individual": "none", "omni": "inplace", "control": "none"}, "a damage column is what pruning costs"),
        ({"individual": "dense", "omni": "dense", "control": "none"}, "mixes the teacher's gain"),
    ],
)
def test_the_caption_says_what_each_arm_learns_from(results: Path, tmp_path: Path, teachers: dict, says: str) -> None:
    outputs = {key: tmp_path / key for key in ("wer_csv", "wer_md", "sparsity_csv", "sparsity_md", "sparsity_tex")}
    wer_tables.write_wer_tables(_summary_paths(results), SPLITS, DECODES, TABLE_DECODE, SETTINGS, outputs, teachers)
    assert says in outputs["sparsity_md"].read_text() and says in outputs["sparsity_tex"].read_text()


def test_primary_endpoint_pools_the_levels_on_test_other_and_checks_the_papers_claim(
    written_tables: dict[str, Path], results: Path, tmp_path: Path
) -> None:
    from omni.results import primary

    primary.write_primary(
        _summary_paths(results),
        SPLITS,
        TABLE_DECODE,
        SETTINGS,
        tmp_path / "primary.csv",
        tmp_path / "primary.md",
        OWN_DENSE,
    )
    table = pd.read_csv(tmp_path / "primary.csv").set_index("split")
    assert set(table["dense_seed"].astype(str)) == {str(DENSE_SEED)}  # one dense model: no row over dense models
    sparsity = pd.read_csv(written_tables["sparsity_csv"]).set_index("tag").loc[["s0.5", "s0.7", "s0.9"]]
    row = table.loc["test-other"]
    omni, individual = sparsity["test-other/omni_wer"].mean(), sparsity["test-other/individual_wer"].mean()
    assert row["levels"] == "0.5;0.7;0.9" and row["seeds"] == len(SEEDS)
    assert row["rel_diff_pct"] == pytest.approx(100 * (omni - individual) / individual)
    assert row["abs_diff"] == pytest.approx(omni - individual)
    assert row["rel_ci_low_pct"] < row["one_sided_lower_pct"] <= row["rel_diff_pct"] <= row["one_sided_upper_pct"]
    claim = (
        "supported"
        if row["one_sided_upper_pct"] < -2
        else "rejected"
        if row["one_sided_lower_pct"] > -2
        else "undecided"
    )
    assert row["claim"] == claim
    assert len(str(row["seed_rel_diffs_pct"]).split(";")) == len(SEEDS)
    assert row["utterances_to_resolve_2pct"] == pytest.approx(
        row["utterances"] * (row["test_resolves_rel_pct"] / 2) ** 2
    )
    text = (tmp_path / "primary.md").read_text()
    assert text.startswith("### Primary endpoint") and "test-other (primary)" in text and "dev (secondary)" in text
    assert "the one dense model every run starts from" in text


def _replicate_evals(results: Path, tmp_path: Path, dense_seed: int, extra_omni_error_every: int) -> list[Path]:
    """The fixture's individual and omni evaluations again as the arms of a second dense model; its omni
    makes one error more on every n-th utterance (another dense model, another difference)."""
    root = tmp_path / "replicate"
    for kind in ("individual", "omni"):
        for source in (results / "eval" / kind).rglob("summary.json"):
            target = root / f"{kind}-dense{dense_seed}" / source.parent.relative_to(results / "eval" / kind)
            target.mkdir(parents=True)
            summary = json.loads(source.read_text())
            summary["arm"] = f"{kind}-dense{dense_seed}"
            for decode in DECODES:
                table = pd.read_csv(source.parent / f"{decode}.tsv", sep="\t")
                if kind == "omni":
                    table["substitutions"] += np.arange(len(table)) % extra_omni_error_every == 0
                table.to_csv(target / f"{decode}.tsv", sep="\t", index=False)
                errors = table[["substitutions", "deletions", "insertions"]].to_numpy().sum()
                summary["decodes"][decode]["wer"] = errors / table["ref_words"].sum()
            (target / "summary.json").write_text(json.dumps(summary))
    return sorted(root.rglob("summary.json"))


def test_primary_endpoint_over_dense_models_is_a_t_interval_on_their_estimates(results: Path, tmp_path: Path) -> None:
    """Each dense model's own arms give one estimate; over them, the mean with a t(n - 1) interval on the
    spread of the estimates (which holds every variance component, the between-dense one included)."""
    from omni.results import primary

    replicate = 1240
    dense_models = [
        *OWN_DENSE,
        {"dense_seed": replicate, "omni": f"omni-dense{replicate}", "individual": f"individual-dense{replicate}"},
    ]
    paths = [*_summary_paths(results), *_replicate_evals(results, tmp_path, replicate, 3)]
    primary.write_primary(
        paths, SPLITS, TABLE_DECODE, SETTINGS, tmp_path / "primary.csv", tmp_path / "primary.md", dense_models
    )
    table = pd.read_csv(tmp_path / "primary.csv", dtype={"dense_seed": str})
    on_other = table[table["split"] == "test-other"].set_index("dense_seed")
    own, other, both = (on_other.loc[key] for key in (str(DENSE_SEED), str(replicate), primary.OVER_DENSE))
    assert other["rel_diff_pct"] > own["rel_diff_pct"]  # the replicate's omni errs more
    estimates = np.array([own["rel_diff_pct"], other["rel_diff_pct"]])
    half = 12.706204736 * estimates.std(ddof=1) / np.sqrt(2)  # t(1) at 97.5 %
    assert both["rel_diff_pct"] == pytest.approx(estimates.mean())
    assert (both["rel_ci_low_pct"], both["rel_ci_high_pct"]) == pytest.approx(
        (estimates.mean() - half, estimates.mean() + half), rel=1e-6
    )
    assert both["ci_dof"] == 1 and both["seeds"] == 2 * len(SEEDS)
    assert [float(v) for v in both["dense_rel_diffs_pct"].split(";")] == pytest.approx(estimates, rel=1e-5)
    text = (tmp_path / "primary.md").read_text()
    assert "over 2 dense models" in text and "the one dense model every run starts from" not in text
    assert f"dense model {replicate}: {other['rel_diff_pct']:+.1f} %" in text


def test_speakers_that_share_voices_are_resampled_by_voice(results: Path) -> None:
    """The synthetic test-other has 96 speaker folders of 6 voices: its independent units are the voices."""
    utt_ids = _utt_ids("test-other")
    speakers = sorted({utt_id.split("-")[0] for utt_id in utt_ids})
    voice = {speaker: f"voice{index % 4}" for index, speaker in enumerate(speakers)}  # 20 speakers, 4 voices
    voices = Voices({utt: utt.split("-")[0] for utt in utt_ids}, {utt: voice[utt.split("-")[0]] for utt in utt_ids})
    by_speaker = wer_tables.sparsity_table(
        wer_tables.load_summaries(_summary_paths(results)), SPLITS, TABLE_DECODE, SETTINGS
    ).set_index("tag")
    by_voice = wer_tables.sparsity_table(
        wer_tables.load_summaries(_summary_paths(results)), SPLITS, TABLE_DECODE, SETTINGS, voices
    ).set_index("tag")
    assert by_speaker.at["s0.9", "test-other/bootstrap_unit"] == "20 speakers"
    assert by_voice.at["s0.9", "test-other/bootstrap_unit"] == "4 voices"
    assert by_voice.at["s0.9", "test-other/rel_diff_pct"] == by_speaker.at["s0.9", "test-other/rel_diff_pct"]
    width = lambda table: table.at["s0.9", "test-other/abs_ci_high"] - table.at["s0.9", "test-other/abs_ci_low"]  # noqa: E731
    assert width(by_voice) != width(by_speaker)


def test_corpus_voices_come_from_speakers_txt_and_real_speech_has_none(tmp_path: Path) -> None:
    from omni.data.voices import corpus_voices, read_voices, utterance_voices

    synth = tmp_path / "synth"
    synth.mkdir()
    (synth / "SPEAKERS.TXT").write_text(
        ";ID  |SUBSET      |MINUTES|VOICE            |RATE_WPM|PITCH\n"
        "40000|test-other  |   1.20|en-us+f5         |     120|   40\n"
        "40001|test-other  |   1.10|en+steph          |     225|   55\n"
    )
    assert corpus_voices(synth).to_dict("list") == {"speaker": ["40000", "40001"], "voice": ["en-us+f5", "en+steph"]}
    librispeech = tmp_path / "librispeech"
    librispeech.mkdir()
    (librispeech / "SPEAKERS.TXT").write_text(
        "; LibriSpeech\n;ID  |SEX| SUBSET           |MINUTES| NAME\n"
        "14   | F | train-clean-360  | 25.03 | Kristin LeMoine\n"
    )
    assert corpus_voices(librispeech).empty and corpus_voices(tmp_path / "none").empty
    (synth / "SPEAKERS.TXT").write_text(";ID|SUBSET|VOICE\n40000|test-other\n")
    with pytest.raises(ValueError, match=r"SPEAKERS.TXT:2"):
        corpus_voices(synth)
    manifest = pd.DataFrame(
        {"utt_id": ["40000-1-0001", "40001-1-0001", "9-1-0001", "own"], "speaker": ["40000", "40001", "9", ""]}
    )
    table = tmp_path / "voices.tsv"
    utterance_voices([manifest], synth.parent / "none").to_csv(table, sep="\t", index=False)
    assert read_voices(table).voice_of("own") == "own", "no speaker named: its own unit"
    (synth / "SPEAKERS.TXT").write_text(";ID|SUBSET|VOICE\n40000|test-other|en-us+f5\n")
    utterance_voices([manifest], synth).to_csv(table, sep="\t", index=False)
    voices = read_voices(table)
    assert [voices.voice_of(utt) for utt in manifest["utt_id"]] == ["en-us+f5", "40001", "9", "own"]
    assert [voices.speaker_of(utt) for utt in manifest["utt_id"]] == ["40000", "40001", "9", "own"]
    assert voices.names_speakers(manifest["utt_id"][:3]) and not voices.names_speakers(manifest["utt_id"])


@pytest.mark.parametrize(
    "bounds, claim", [((-9.0, -3.0), "supported"), ((-1.0, 4.0), "rejected"), ((-5.0, 1.0), "undecided")]
)
def test_the_papers_claim_is_judged_by_the_one_sided_bounds(bounds: tuple[float, float], claim: str) -> None:
    from omni.results.primary import Endpoint

    endpoint = Endpoint(
        split="test-other",
        levels=("0.5",),
        seeds=3,
        unit="6 voices",
        omni_wer=0.5,
        individual_wer=0.5,
        abs_diff=0.0,
        rel_diff_pct=sum(bounds) / 2,
        ci_rel_pct=bounds,
        one_sided=bounds,
        seed_rel_diffs_pct=(),
        degrees_of_freedom=2.0,
        test_resolves_rel_pct=6.0,
        utterances=200,
    )
    assert endpoint.claim == claim
    assert endpoint.utterances_to_resolve_2pct == pytest.approx(200 * 9), "resolution scales as 1 / sqrt(size)"


def test_the_study_names_each_training_logs_model_and_seed_without_parsing_by_position(tmp_path: Path) -> None:
    study = Study.from_config(smoke_config(tmp_path))
    logs, labels = study.train_logs(), study.train_log_labels()
    assert len(logs) == len(labels) == len(study.trained_models())
    by_log = dict(zip(logs, labels))
    assert by_log[study.trained_files("individual", 1235, "s0.8")["train_log"]] == "individual s0.8"
    assert by_log[study.trained_files(*study.dense_model(study.dense_seeds[0]))["train_log"]] == "dense"
    assert [seed_of_path(log) for log in logs].count(1235) == (len(logs) - len(study.dense_seeds)) // 2
    assert seed_of_path(study.benchmark("build_corpus")) is None
