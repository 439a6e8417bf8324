"""The real DAG end to end on the smoke configuration: every stage runs, tables and figures
appear, a second run has nothing to do, and the Snakemake HTML report holds the results."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", "2",
             "--configfile", str(REPO / "configs" / "smoke.yaml")]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(SNAKEMAKE + ["--directory", str(workdir), *args], capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("pipeline")
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_whole_study_runs_and_tabulates_every_arm(smoke_run: Path) -> None:
    results = smoke_run / "results" / "smoke"
    wer = pd.read_csv(results / "tables" / "wer.csv")
    assert {"dense", "individual", "omni"} <= set(wer["arm"])
    assert set(wer["split"]) == {"dev", "test-clean", "test-other"}
    assert set(wer["decode"]) == {"greedy-full", "greedy-streaming", "beam-streaming"}
    individual = wer[wer["arm"] == "individual"]
    assert sorted(individual["sparsity"].unique()) == [0.5, 0.8]
    for name in ["wer.md", "wer_vs_sparsity.md", "wer_vs_sparsity.tex", "cost.md", "cost.csv"]:
        assert (results / "tables" / name).stat().st_size > 0
    for name in ["pareto.png", "training_curves.png", "cost.png"]:
        assert (results / "figures" / name).stat().st_size > 10_000


def test_second_run_has_nothing_to_do(smoke_run: Path) -> None:
    result = snakemake(smoke_run, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_config_change_reruns_the_rules_that_use_it(smoke_run: Path) -> None:
    changed = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    changed["individual"]["prune_fraction"] = 0.5
    changed_file = smoke_run / "changed.yaml"
    changed_file.write_text(yaml.safe_dump(changed))
    result = snakemake(smoke_run, "-n", "--configfile", str(changed_file))
    assert result.returncode == 0, result.stderr[-4000:]
    planned = result.stdout + result.stderr
    assert "train_individual" in planned and "Params have changed" in planned
    for untouched in ["train_dense", "train_omni", "build_corpus"]:
        assert untouched not in planned, untouched


def test_html_report_holds_tables_and_figures(smoke_run: Path) -> None:
    report = smoke_run / "report.html"
    result = snakemake(smoke_run, "--report", str(report))
    assert result.returncode == 0, result.stderr[-4000:]
    html = report.read_text(errors="replace")
    for name in ["pareto.png", "training_curves.png", "cost.png", "wer_vs_sparsity", "cost.md"]:
        assert name in html, name


@pytest.mark.parametrize(("bad_yaml", "named"), [
    ("train:\n  lr: -1\n", "lr"),  # the schema
    ("model:\n  presets:\n    tiny:\n      segment_length: 17\n", "model.presets.tiny.segment_length"),  # across keys
])
def test_invalid_config_names_the_key_before_any_job(tmp_path: Path, bad_yaml: str, named: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(bad_yaml)
    result = subprocess.run(SNAKEMAKE + ["--directory", str(tmp_path), "--configfile", str(bad), "-n"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert named in result.stdout + result.stderr
