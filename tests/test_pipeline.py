"""The real DAG end to end on the smoke configuration: every stage runs, tables and figures
appear, a second run has nothing to do, and the Snakemake HTML report holds the results."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from omni.data.manifest import read_manifest
from omni.study import Study
from tests.conftest import REPO, smoke_config
from tests.faults import FaultRecorder

SNAKEMAKE = [
    sys.executable,
    "-m",
    "snakemake",
    "--snakefile",
    str(REPO / "Snakefile"),
    "--cores",
    "2",
    "--configfile",
    str(REPO / "configs" / "smoke.yaml"),
]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(SNAKEMAKE + ["--directory", str(workdir), *args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("pipeline")
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_whole_study_runs_and_tabulates_every_arm(smoke_run: Path) -> None:
    results = smoke_run / "results" / "smoke"
    wer = pd.read_csv(results / "tables" / "wer.csv")
    assert {"dense", "control", "individual", "omni", "omni-searched"} <= set(wer["arm"])
    assert set(wer["split"]) == {"dev", "test-clean", "test-other"}
    assert set(wer["decode"]) == {"greedy-full", "greedy-streaming", "beam-streaming"}
    individual = wer[wer["arm"] == "individual"]
    assert sorted(individual["sparsity"].unique()) == [0.5, 0.8]
    assert sorted(individual["seed"].unique()) == [1234, 1235] and set(wer.loc[wer["arm"] == "dense", "seed"]) == {1234}
    comparison = pd.read_csv(results / "tables" / "wer_vs_sparsity.csv").set_index("tag")
    for split in ("dev", "test-clean", "test-other"):
        assert (comparison.loc[["s0.5", "s0.8"], f"{split}/omni_seeds"] == 2).all()
        assert comparison.loc[["s0.5", "s0.8"], f"{split}/individual_wer_sd"].notna().all()
        assert comparison.loc[["s0.5", "s0.8"], f"{split}/abs_ci_low"].notna().all()
        assert comparison.at["dense", f"{split}/control_seeds"] == 2
    for name in ["wer.md", "wer_vs_sparsity.md", "wer_vs_sparsity.tex", "cost.md", "cost.csv"]:
        assert (results / "tables" / name).stat().st_size > 0
    for name in ["pareto.png", "training_curves.png", "cost.png", "speed.png"]:
        assert (results / "figures" / name).stat().st_size > 10_000
    speed = pd.read_csv(results / "tables" / "speed.csv")
    evaluated = wer[["arm", "seed", "tag"]].drop_duplicates()
    assert len(speed) == len(evaluated) and set(speed["arm"]) == set(evaluated["arm"]), "one record per model"
    assert speed["wer"].notna().all() and (speed["sparse_t1_chunk_ms_mean"] > 0).all()
    assert (speed["onnx_t1_chunk_ms_mean"] > 0).all() and speed["onnx_wer"].notna().all()
    assert set(speed["reference_t1"]) <= {"onnx", "onnx_int8"}, "the reference is the best runtime path"
    assert (speed.loc[speed["arm"] == "dense", "masked_linears"] == 0).all()
    assert (speed.loc[speed["arm"] == "individual", "masked_linears"] > 0).all()


def test_study_lists_every_job_benchmark_the_run_wrote(smoke_run: Path) -> None:
    """The cost account reads the benchmark files omni.study lists; they must be exactly the jobs' own."""
    config = smoke_config(smoke_run / "results" / "smoke")
    study = Study.from_config(config)
    written = {str(p) for p in (smoke_run / "results" / "smoke" / "benchmarks").rglob("*.tsv")}
    report_rules = {
        study.benchmark(rule)
        for rule in ("wer_table", "accounting", "figures", "strategy_table", "speed_table", "diagnostics")
    }
    assert set(study.benchmark_files()) == written - report_rules


def test_search_never_scores_a_reported_dev_utterance(smoke_run: Path) -> None:
    results = smoke_run / "results" / "smoke"
    search = read_manifest(results / "data" / "manifests" / "dev-search.tsv")
    report = read_manifest(results / "data" / "manifests" / "dev-report.tsv")
    assert not set(search["utt_id"]) & set(report["utt_id"]) and len(search) and len(report)
    for seed in (1234, 1235):
        cost = json.loads((results / "search" / "omni" / f"seed{seed}" / "cost.json").read_text())
        assert cost["extra"]["dev_utterances"] == len(search)
        assert cost["extra"]["evaluations"] <= 8  # configs/smoke.yaml: search.evaluations
    reported = pd.read_csv(results / "eval" / "dense" / "seed1234" / "dense" / "dev" / "greedy-streaming.tsv", sep="\t")
    assert sorted(reported["utt_id"]) == sorted(report["utt_id"])


def test_second_run_has_nothing_to_do(smoke_run: Path) -> None:
    result = snakemake(smoke_run, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def scheduled_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from a dry run's "Job stats" table ({} when nothing is to be done)."""
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:", 1)[1].split("\ntotal", 1)[0]
    rows = (line.split() for line in table.splitlines())
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit()}


# The smoke study: levels 0.5 and 0.8 (budgets = levels), 3 evaluation splits, 2 training seeds;
# 15 evaluated models: dense, and per seed the dense-continued control, 2 individual, 2 omni, 2 searched.
REPORT = {"wer_table": 1, "figures": 1, "accounting": 1, "strategy_table": 1, "speed_table": 1, "all": 1}
DIAGNOSED = {**REPORT, "diagnostics": 1}  # the report when a supernet, an individual job or their evaluations change
SUPERNET_AND_DOWNSTREAM = {"train_omni": 2, "extract_omni": 4, "search": 2, "extract_searched": 4}


def exported(models: int) -> dict[str, int]:
    """A model that changes is exported again (compactly and to the runtimes) and its device metrics measured again."""
    return {"export_model": models, "export_runtimes": models, "device_metrics": models}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # the pruning arms and the control share the fine-tuning schedule
        pytest.param(
            lambda c: c["train"].update(finetune_lr=0.001),
            {
                "train_control": 2,
                "train_individual": 4,
                **SUPERNET_AND_DOWNSTREAM,
                **exported(14),
                "evaluate": 42,
                **DIAGNOSED,
            },
            id="train.finetune_lr",
        ),
        # the new level's own individual job; the supernet samples levels, so it and all it feeds rerun
        pytest.param(
            lambda c: c["sparsity"].update(levels=[0.5, 0.7, 0.8]),
            {
                "train_individual": 2,
                "train_omni": 2,
                "extract_omni": 6,
                "search": 2,
                "extract_searched": 6,
                **exported(14),
                "evaluate": 42,
                **DIAGNOSED,
            },
            id="sparsity.levels+0.7",
        ),
        pytest.param(
            lambda c: c["omni"].update(sampling="sandwich"),
            {**SUPERNET_AND_DOWNSTREAM, **exported(8), "evaluate": 24, **DIAGNOSED},
            id="omni.sampling",
        ),
        # omni.budget null: the supernet trains as many sub-network passes as one individual job; the
        # control as many steps
        pytest.param(
            lambda c: c["individual"].update(steps=5),
            {
                "train_control": 2,
                "train_individual": 4,
                **SUPERNET_AND_DOWNSTREAM,
                **exported(14),
                "evaluate": 42,
                **DIAGNOSED,
            },
            id="individual.steps",
        ),
        # a third seed: its own control, individual jobs, supernet and search; nothing of the first two
        pytest.param(
            lambda c: c.update(seeds=[1234, 1235, 1236]),
            {
                "train_control": 1,
                "train_individual": 2,
                "train_omni": 1,
                "extract_omni": 2,
                "search": 1,
                "extract_searched": 2,
                **exported(7),
                "evaluate": 21,
                **DIAGNOSED,
            },
            id="seeds+1236",
        ),
        pytest.param(
            lambda c: c["evaluate"].update(beam_width=3), {"evaluate": 45, **DIAGNOSED}, id="evaluate.beam_width"
        ),
        # both arms and the control learn from the dense model by default: the individual arm without it reruns
        # its jobs and what they feed; the KL weight reruns every job with a teacher (the control's too); the
        # teacher's forward cost only the supernets (their budget counts it)
        pytest.param(
            lambda c: c.setdefault("distill", {}).update(individual="none"),
            {"train_individual": 4, **exported(4), "evaluate": 12, **DIAGNOSED},
            id="distill.individual",
        ),
        pytest.param(
            lambda c: c.setdefault("distill", {}).update(weight=0.5),
            {
                "train_control": 2,
                "train_individual": 4,
                **SUPERNET_AND_DOWNSTREAM,
                **exported(14),
                "evaluate": 42,
                **DIAGNOSED,
            },
            id="distill.weight",
        ),
        pytest.param(
            lambda c: c.setdefault("distill", {}).update(teacher_forward_cost=0.5),
            {**SUPERNET_AND_DOWNSTREAM, **exported(8), "evaluate": 24, **DIAGNOSED},
            id="distill.teacher_forward_cost",
        ),
        pytest.param(
            lambda c: c.setdefault("distill", {}).update(
                individual="none", omni="none", weight=0.5, teacher_forward_cost=0.5
            ),
            {
                "train_control": 2,
                "train_individual": 4,
                **SUPERNET_AND_DOWNSTREAM,
                **exported(14),
                "evaluate": 42,
                **DIAGNOSED,
            },
            id="distill off: its weight and cost change nothing more",
        ),
        # a variant arm: its own supernets and what they feed (not searched: search.arms); nothing of the others
        pytest.param(
            lambda c: c.update(variants={"omni-uniform": {"omni": {"level_weights": None}}}),
            {"train_omni": 2, "extract_omni": 4, **exported(4), "evaluate": 12, **DIAGNOSED},
            id="variants+omni-uniform",
        ),
        # a second dense model: it, and the study's own individual and omni arms again from it (no control, not
        # searched); nothing of the first dense model's arms
        pytest.param(
            lambda c: c.update(dense_replicates=[1240]),
            {
                "train_dense": 1,
                "train_individual": 4,
                "train_omni": 2,
                "extract_omni": 4,
                **exported(9),
                "evaluate": 27,
                **DIAGNOSED,
            },
            id="dense_replicates+1240",
        ),
        # a budget multiple: that arm's jobs and what they feed, and the budget curve; nothing of the 1x arms
        pytest.param(
            lambda c: c["omni"].update(budget_multiples=[1, 2]),
            {"train_omni": 2, "extract_omni": 4, **exported(4), "evaluate": 12, **REPORT, "budget": 1},
            id="omni.budget_multiples+2",
        ),
        pytest.param(
            lambda c: c["individual"].update(budget_multiples=[0.5, 1]),
            {"train_individual": 4, **exported(4), "evaluate": 12, **REPORT, "budget": 1},
            id="individual.budget_multiples+0.5",
        ),
        pytest.param(
            lambda c: c["report"].update(confidence=0.9),
            {"wer_table": 1, "figures": 1, "strategy_table": 1, "all": 1},
            id="report.confidence",
        ),
        # a variant in another pruning unit: its own individual jobs and supernets, nothing of the other arms
        pytest.param(
            lambda c: c.update(
                variants={
                    name: {"sparsity": {"granularity": "block", "block_shape": [16, 1]}}
                    for name in ("individual-b16x1", "omni-b16x1")
                }
            ),
            {"train_individual": 4, "train_omni": 2, "extract_omni": 4, **exported(8), "evaluate": 24, **DIAGNOSED},
            id="variants+block 16x1",
        ),
        # a device_metrics setting: those jobs and their table, nothing else
        pytest.param(
            lambda c: c["speed"].update(utterances=2),
            {"device_metrics": 15, "speed_table": 1, "all": 1},
            id="speed.utterances",
        ),
        # another runtime: every model's runtime export and device metrics, nothing of the training or evaluation
        pytest.param(
            lambda c: c["speed"].update(runtimes=["onnx", "executorch"]),
            {"export_runtimes": 15, "device_metrics": 15, "speed_table": 1, "all": 1},
            id="speed.runtimes",
        ),
        pytest.param(
            lambda c: c["search"].update(population=4),
            {"search": 2, "extract_searched": 4, **exported(4), "evaluate": 12, **REPORT},
            id="search.population",
        ),
        pytest.param(
            lambda c: c["model"].setdefault("presets", {}).update(base={"num_layers": 12}), {}, id="unused base preset"
        ),
    ],
)
def test_config_edit_reruns_exactly_what_depends_on_it(
    smoke_run: Path, edit: Callable[[dict], None], expected: dict[str, int]
) -> None:
    changed = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    edit(changed)
    changed_file = smoke_run / "changed.yaml"
    changed_file.write_text(yaml.safe_dump(changed))
    result = snakemake(smoke_run, "-n", "--configfile", str(changed_file))
    assert result.returncode == 0, result.stderr[-4000:]
    assert scheduled_jobs(result.stdout + result.stderr) == expected


def test_html_report_holds_tables_and_figures(smoke_run: Path) -> None:
    report = smoke_run / "report.html"
    result = snakemake(smoke_run, "--report", str(report))
    assert result.returncode == 0, result.stderr[-4000:]
    html = report.read_text(errors="replace")
    for name in [
        "pareto.png",
        "training_curves.png",
        "cost.png",
        "speed.png",
        "wer_vs_sparsity",
        "cost.md",
        "speed.md",
    ]:
        assert name in html, name


@pytest.mark.fault("bad configs")
@pytest.mark.parametrize(
    ("bad_yaml", "named", "key"),
    [
        ("train:\n  lr: -1\n", "lr", "train.lr"),  # the schema
        (
            "model:\n  presets:\n    tiny:\n      segment_length: 17\n",
            "model.presets.tiny.segment_length",
            "model.presets.tiny.segment_length",
        ),  # across keys
        ("dense_replicates: [1234]\n", "dense_replicates", "dense_replicates"),  # the study's own dense model again
        (
            "sparsity:\n  levels: [0.5, .nan]\n",
            "config key 'sparsity.levels.1': nan is not a finite number",
            "sparsity.levels.1",
        ),
        ('results_dir: ""\n', "config key 'results_dir': '' should be non-empty", "results_dir"),
        ("results_dir: /\n", "config key 'results_dir': '/' is /, which holds the repository", "results_dir"),
        (f"results_dir: {json.dumps(str(REPO))}\n", "the repository itself", "config key 'results_dir'"),
        (f"results_dir: {json.dumps(str(REPO.parent))}\n", "which holds the repository", "config key 'results_dir'"),
        (
            f"results_dir: {json.dumps(str(REPO / 'omni'))}\n",
            "inside the repository but outside",
            "config key 'results_dir'",
        ),
        (
            "train:\n  dense_clean_steps: 3401\n",
            "config key 'train.dense_clean_steps'",
            "train.dense_clean_steps",
        ),  # of 3400 dense steps
        (
            "train:\n  warmup_steps: 3400\n",
            "config key 'train.warmup_steps': the dense job's lr warm-up of 3400 steps",
            "train.warmup_steps",
        ),
        (
            "train:\n  warmup_steps: 800\n",
            "config key 'train.warmup_steps': the lr warm-up of 800 steps is not shorter than the individual job's",
            "train.warmup_steps",
        ),
        (
            "train:\n  finetune_warmup_fraction: 1\n",
            "config key 'train.finetune_warmup_fraction'",
            "train.finetune_warmup_fraction",
        ),
    ],
    ids=[
        "train.lr",
        "segment_length",
        "dense_replicates",
        "nan",
        "results_dir empty",
        "results_dir /",
        "results_dir the repository",
        "results_dir above it",
        "results_dir inside it",
        "dense_clean_steps",
        "warmup_steps dense",
        "warmup_steps individual",
        "finetune_warmup_fraction",
    ],
)
def test_invalid_config_names_the_key_before_any_job(
    tmp_path: Path, bad_yaml: str, named: str, key: str, fault: FaultRecorder
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(bad_yaml)
    result = subprocess.run(
        SNAKEMAKE + ["--directory", str(tmp_path), "--configfile", str(bad), "-n"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert named in result.stdout + result.stderr
    fault.named(result.stdout + result.stderr, key)
    fault.survived("snakemake stopped while reading the workflow, before any job")


@pytest.mark.fault("bad configs")
def test_numbers_nested_in_a_command_line_config_arrive_as_text_and_the_error_says_so(
    tmp_path: Path, fault: FaultRecorder
) -> None:
    """Snakemake's --config reads a value nested in {...} with YAML's BaseLoader: every number a string."""
    result = subprocess.run(
        SNAKEMAKE + ["--directory", str(tmp_path), "-n", "--config", "sparsity={levels: [0.5, 0.8]}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    fault.named(output, "config key 'sparsity.levels.0'")
    assert "config key 'sparsity.levels.0': '0.5' is not of type 'number' (a string" in output, output[-3000:]
    assert "give such values in a --configfile" in output
    fault.survived("snakemake stopped before any job, saying --config reads nested values as text")


@pytest.mark.fault("bad configs")
def test_a_yaml_error_in_the_default_config_names_the_file_and_line(tmp_path: Path, fault: FaultRecorder) -> None:
    """config.yaml, which the Snakefile reads itself (a --configfile Snakemake reads before the Snakefile
    runs, and says only that some config file is not valid JSON or YAML)."""
    checkout = tmp_path / "checkout"  # what the Snakefile reads before config.yaml: itself and omni/
    shutil.copytree(REPO / "omni", checkout / "omni", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, checkout / name)
    config = checkout / "config.yaml"
    config.write_text(config.read_text().replace("seed: 1234 ", "seed: [1234 ", 1))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(checkout / "Snakefile"),
            "-n",
            "--directory",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    fault.named(output, f"{config} is not valid YAML")
    assert re.search(rf'{config} is not valid YAML(.|\n)*"{config}", line \d+, column \d+', output), output[-3000:]
    fault.survived("snakemake stopped before any job, naming the file, line and column")


def test_rerun_with_the_same_seeds_gives_identical_tables_and_fronts(smoke_run: Path) -> None:
    """One seed's control trained again and its supernet searched again, and all they feed scored and
    tabulated again: the same numbers (the search's timing columns are only reported)."""
    results = smoke_run / "results" / "smoke"
    tables = ["tables/wer.csv", "tables/wer_vs_sparsity.csv"]
    fronts = ["search/omni/seed1234/pareto.csv"]
    before = {name: (results / name).read_bytes() for name in tables}
    fronts_before = {name: pd.read_csv(results / name).drop(columns=["eval_s", "elapsed_s"]) for name in fronts}
    result = snakemake(
        smoke_run,
        "--forcerun",
        "results/smoke/models/control/seed1234/continued/model.pt",
        f"results/smoke/{fronts[0]}",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    scheduled = scheduled_jobs(result.stdout + result.stderr)
    assert scheduled["train_control"] == 1 and scheduled["search"] == 1
    for name in tables:
        assert (results / name).read_bytes() == before[name], name
    for name in fronts:
        pd.testing.assert_frame_equal(
            pd.read_csv(results / name).drop(columns=["eval_s", "elapsed_s"]), fronts_before[name]
        )
