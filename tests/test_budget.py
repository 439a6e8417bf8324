"""Budget as an axis of the study: budget-multiple arms (their schedules scaled with their steps), the budget
curve, the break-even multiple and the savings; and dense-model replicates' arms."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omni import job_params
from omni.config import ConfigError
from omni.config_checks import check_study
from omni.costs import CostRecord
from omni.jobs.specs import supernet_spec, training_spec
from omni.jobs.training import train_settings
from omni.results import budget, cost_tables
from omni.results.bootstrap import BootstrapSettings
from omni.sparsity.budget import ramp_steps
from omni.study import Study
from tests.conftest import layered_config

MULTIPLES = {"omni": {"budget_multiples": [1, 2, 4]}, "individual": {"budget_multiples": [0.5, 1, 2]}}
SETTINGS = BootstrapSettings(resamples=400, confidence=0.95, seed=7, min_speakers=20)
DECODE = "greedy-streaming"
SEEDS = (1237, 1238, 1239)
UTTERANCES = 120


def planned_steps(supernet: dict) -> tuple[int, int]:
    """(steps, warm-up steps) of the supernet job of a rule section."""
    spec = supernet_spec(supernet)
    return spec.steps, spec.warmup_steps


def test_budget_multiples_are_arms_of_scaled_steps_with_the_1x_jobs_fractions() -> None:
    config = layered_config(MULTIPLES)
    assert job_params.budget_multiples(config, "omni") == {1: "omni", 2: "omni-x2", 4: "omni-x4"}
    assert job_params.budget_multiples(config, "individual") == {
        0.5: "individual-x0.5",
        1: "individual",
        2: "individual-x2",
    }
    steps = config["individual"]["steps"]
    one_warmup = config["train"]["warmup_steps"]  # the 1x jobs: the fixed warm-up (fraction null)
    for arm, multiple in (("individual-x0.5", 0.5), ("individual-x2", 2)):
        section = job_params.individual(config, arm)
        assert section["steps"] == steps * multiple and "budget_multiples" not in section
        training = training_spec(job_params.arm_training(config, arm, 1237))
        warmup = train_settings(training, section["steps"]).warmup_steps
        assert warmup == round(one_warmup * multiple)
        assert ramp_steps(section["prune_fraction"], section["steps"]) == round(0.6 * steps * multiple)
    one_steps, one_ramp = planned_steps(job_params.supernet(config))
    for arm, multiple in (("omni-x2", 2), ("omni-x4", 4)):
        supernet = job_params.supernet(config, arm)
        assert supernet["budget"] == multiple * job_params.supernet(config)["budget"]
        assert planned_steps(supernet) == (multiple * one_steps, multiple * one_ramp)
        assert (
            train_settings(training_spec(job_params.arm_training(config, arm, 1237)), multiple * one_steps).warmup_steps
            == multiple * one_warmup
        )
        assert job_params.paired_individual(config)[arm] == "individual", "each multiple against individual(1x)"
    # the 1x arms are the study's own, with the params they always had
    default = layered_config({})
    assert job_params.arm_training(config, "omni", 1237) == job_params.training(default, "omni", 1237)
    assert job_params.supernet(config) == job_params.supernet(default)
    assert job_params.individual(config) == job_params.individual(default)
    assert Study.from_config(config).budget_curve and not Study.from_config(default).budget_curve


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"omni": {"budget_multiples": [2, 4]}}, "omni.budget_multiples"),
        (
            {"variants": {"omni-x2": {"omni": {"sampling": "sandwich"}}}, "omni": {"budget_multiples": [1, 2]}},
            "variants",
        ),
        (
            {"variants": {"omni-long": {"omni": {"budget_multiples": [1, 2]}}}},
            "variants.omni-long.omni.budget_multiples",
        ),
        ({"dense_replicates": [1234]}, "dense_replicates"),
    ],
)
def test_budget_and_replicate_settings_that_cannot_hold_name_their_key(overrides: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        check_study(layered_config(overrides))


def test_dense_replicates_train_the_studys_own_arms_from_their_dense_model() -> None:
    config = layered_config({"dense_replicates": [1240]})
    study = Study.from_config(config)
    assert study.dense_seeds == ("1234", "1240")
    assert study.dense_model_file("omni-dense1240") == "results/models/dense/seed1240/dense/model.pt"
    assert study.dense_model_file("omni") == study.dense_model_file("individual-dense1240").replace("1240", "1234")
    assert job_params.paired_individual(config)["omni-dense1240"] == "individual-dense1240"
    assert job_params.dense_comparisons(config) == [
        {"dense_seed": 1234, "omni": "omni", "individual": "individual"},
        {"dense_seed": 1240, "omni": "omni-dense1240", "individual": "individual-dense1240"},
    ]
    assert job_params.on_other_dense(config) == ["individual-dense1240", "omni-dense1240"]
    assert job_params.training(config, "dense", 1240)["seed"] == 1240
    assert job_params.supernet(config, "omni-dense1240") == job_params.supernet(config)


@pytest.mark.parametrize(
    ("multiples", "values", "expected"),
    [
        ([1, 2, 4], [8.0, 4.0, -4.0], (2 * math.sqrt(2), "at")),  # half way from 2 to 4 in log2: 2^1.5
        ([1, 2, 4], [8.0, 0.0, -4.0], (2.0, "at")),
        ([1, 2, 4], [-1.0, -2.0, -3.0], (1.0, "below")),
        ([1, 2, 4], [9.0, 6.0, 1.0], (4.0, "above")),
        ([4, 1, 2], [-4.0, 8.0, 4.0], (2 * math.sqrt(2), "at")),  # order of the lists does not matter
    ],
)
def test_break_even_interpolates_in_log_budget_and_never_extrapolates(multiples, values, expected) -> None:
    found = budget.crossing(multiples, values)
    assert (found.value, found.side) == pytest.approx(expected)
    assert found.text() == {"at": f"{expected[0]:.2f}x", "below": "<= 1x", "above": "> 4x"}[expected[1]]


# ------------------------------------------------------------- the curve on a designed result tree


def _write_eval(root: Path, arm: str, tag: str, seed: int, errors: np.ndarray, words: np.ndarray) -> None:
    folder = root / "eval" / arm / f"seed{seed}" / tag / "test-other"
    folder.mkdir(parents=True)
    pd.DataFrame(
        {
            "utt_id": [f"{i % 30}-1-{i:04d}" for i in range(UTTERANCES)],
            "reference": "A",
            "hypothesis": "",
            "substitutions": errors,
            "deletions": 0,
            "insertions": 0,
            "ref_words": words,
            "char_errors": errors,
            "ref_chars": words,
        }
    ).to_csv(folder / f"{DECODE}.tsv", sep="\t", index=False)
    sparsity = float(tag[1:])
    summary = {
        "arm": arm,
        "seed": seed,
        "tag": tag,
        "sparsity": sparsity,
        "split": "test-other",
        "params_total": 100,
        "params_kept": int(100 * (1 - sparsity)),
        "prunable_total": 80,
        "prunable_kept": int(80 * (1 - sparsity)),
        "export_bytes_fp32": 400,
        "export_bytes_fp16": 200,
        "decodes": {
            DECODE: {
                "wer": errors.sum() / words.sum(),
                "cer": 0.0,
                "utterances": UTTERANCES,
                "words": int(words.sum()),
                "decode_seconds": 1.0,
                "audio_seconds": 10.0,
                "rtf": 0.1,
            }
        },
    }
    (folder / "summary.json").write_text(json.dumps(summary))


def _cost(path: Path, job: str, arm: str, wall_s: float) -> None:
    record = CostRecord(
        job=job,
        arm=arm,
        sparsity=None,
        device_kind="cpu",
        device_name="",
        device_count=1,
        processes=1,
        threads=1,
        wall_s=wall_s,
        steps=1,
        audio_hours=1.0,
        peak_mem_mb=1.0,
    )
    payload = {**dataclasses.asdict(record), "device_hours": record.device_hours, "device_hours_unit": "CPU core-hours"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


# omni at m errs (1 + GAP[m]) times as often as individual(1x); individual at m (1 + ITS_OWN[m]) times
GAP = {1: 0.12, 2: 0.06, 4: -0.06}
ITS_OWN = {0.5: 0.05, 1: 0.0, 2: -0.03}


@pytest.fixture(scope="module")
def budget_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("budget")
    rng = np.random.default_rng(3)
    words = rng.integers(80, 200, size=UTTERANCES)  # many errors per utterance: the designed ratios survive rounding
    for level in (0.5, 0.9):
        base = rng.binomial(words, 0.1 + 0.3 * level)
        for seed in SEEDS:
            noise = rng.binomial(5, 0.3, size=UTTERANCES)  # each seed's own errors, shared by its arms
            individual = base + noise
            for multiple, arm in ((0.5, "individual-x0.5"), (1, "individual"), (2, "individual-x2")):
                _write_eval(
                    root, arm, f"s{level}", seed, np.rint(individual * (1 + ITS_OWN[multiple])).astype(int), words
                )
            for multiple, arm in ((1, "omni"), (2, "omni-x2"), (4, "omni-x4")):
                _write_eval(root, arm, f"s{level}", seed, np.rint(individual * (1 + GAP[multiple])).astype(int), words)
    _cost(root / "models/dense/seed1234/dense/cost.json", "train_dense", "dense", 3000.0)
    for seed in SEEDS:
        for level in (0.5, 0.9):
            _cost(root / f"models/individual/seed{seed}/s{level}/cost.json", "train_individual", "individual", 1000.0)
    return root


def test_budget_curve_finds_the_break_even_multiple_and_states_both_savings(budget_tree: Path) -> None:
    outputs = {
        "csv": budget_tree / "budget.csv",
        "break_even_csv": budget_tree / "budget_break_even.csv",
        "md": budget_tree / "budget.md",
        "png": budget_tree / "budget.png",
    }
    summaries = sorted(str(path) for path in (budget_tree / "eval").rglob("summary.json"))
    records = sorted(str(path) for path in (budget_tree / "models").rglob("cost.json"))
    budget.write_budget(
        summaries,
        records,
        str(budget_tree),
        ["test-other"],
        DECODE,
        SETTINGS,
        {1: "omni", 2: "omni-x2", 4: "omni-x4"},
        {0.5: "individual-x0.5", 1: "individual", 2: "individual-x2"},
        2,
        outputs,
    )
    curves = pd.read_csv(outputs["csv"])
    gap = curves[(curves["comparison"] == budget.GAP) & (curves["level"] == "pooled")].set_index("multiple")
    for multiple, relative in GAP.items():  # the designed gap, up to rounding errors to whole words
        assert gap.at[multiple, "rel_diff_pct"] == pytest.approx(100 * relative, abs=1.5)
        assert len(gap.at[multiple, "seed_rel_diffs_pct"].split(";")) == len(SEEDS)
    own = curves[(curves["comparison"] == budget.INDIVIDUAL_CURVE) & (curves["level"] == "pooled")]
    assert own.set_index("multiple").at[1, "rel_diff_pct"] == 0.0
    diagonal = curves[curves["comparison"] == budget.DIAGONAL]
    assert sorted(diagonal["multiple"].unique()) == [1, 2]  # the multiples both arms have
    assert set(diagonal["baseline_arm"]) == {"individual", "individual-x2"}

    break_even = pd.read_csv(outputs["break_even_csv"]).set_index("level")
    pooled = break_even.loc["pooled"]
    expected = budget.crossing(list(gap.index), list(gap["rel_diff_pct"])).value
    assert 2 < pooled["m_star"] < 4 and pooled["m_star"] == pytest.approx(expected)
    assert pooled["m_star_low"] <= pooled["m_star"] <= pooled["m_star_high"] or pooled["m_star_high_text"] == "> 4x"
    assert pooled["dense_job_units"] == pytest.approx(3.0)  # 3000 s against 1000 s per individual job
    assert pooled["training_saving"] == pytest.approx(2 / pooled["m_star"])
    assert pooled["end_to_end_saving"] == pytest.approx((3 + 2) / (3 + pooled["m_star"]))
    text = outputs["md"].read_text()
    assert "m*" in text and f"{pooled['m_star']:.2f}x" in text and "D = 3.00 individual jobs" in text
    assert outputs["png"].read_bytes().startswith(b"\x89PNG")
    saving = "\n".join(cost_tables.break_even_markdown(pd.read_csv(outputs["break_even_csv"])))
    assert "## Saving at the break-even multiple" in saving and f"{2 / pooled['m_star']:.2f}x" in saving
