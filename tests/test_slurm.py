"""SLURM for real: a one-node cluster on this machine (tests/slurm_cluster.py) runs a small smoke study
through `--profile profiles/slurm`; every job that is not a local rule ran as a SLURM job that completed,
and the tables equal those of the same study run locally. Marked `slurm` (`make test-slurm`, a .ci/run
step): it installs packages and starts daemons, minutes beside the unit tests."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests import slurm_cluster
from tests.conftest import REPO

pytestmark = pytest.mark.slurm

# The smoke study, smaller: one seed, one level, one split and decode (a SLURM job costs ~10 s of scheduling).
STUDY = {
    "seeds": [1234],
    "sparsity": {"levels": [0.8]},
    "evaluate": {"splits": ["test-other"], "decodes": ["greedy-streaming"]},
    "search": {"population": 2, "iterations": 1, "evaluations": 4},
    "resources": {
        stage: {"mem_mb": 1500, "runtime_min": 30, "gpus": 0, "partition": slurm_cluster.PARTITION}
        for stage in ("light", "data", "train", "evaluate")
    },
}
TABLES = ("wer.csv", "wer_vs_sparsity.csv", "strategies.csv")
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")
TIMEOUT_S = 1800


@pytest.fixture(scope="module")
def cluster():
    try:
        running = slurm_cluster.start()
    except slurm_cluster.Unavailable as reason:
        pytest.skip(f"no SLURM here: {reason}")
    yield running
    running.stop()


def _snakemake(workdir: Path, config: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(REPO / "configs" / "smoke.yaml"),
        str(config),
        *extra,
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert run.returncode == 0, run.stderr[-5000:]
    return run


def _scheduled_jobs(log: str) -> dict[str, tuple[str, str]]:
    """Snakemake job id -> (`rule` or `localrule`, rule name), from a run's log."""
    jobs, current = {}, None
    for line in log.splitlines():
        if header := re.match(r"^(localrule|rule) (\w+):$", line):
            current = (header.group(1), header.group(2))
        elif (jobid := re.match(r"^\s+jobid: (\d+)$", line)) and current:
            jobs[jobid.group(1)] = current
            current = None
    return jobs


def test_the_smoke_study_runs_through_slurm_and_equals_a_local_run(cluster, tmp_path: Path) -> None:
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(STUDY))
    _snakemake(tmp_path / "local", config, "--cores", "2")
    run = _snakemake(
        tmp_path / "slurm",
        config,
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "--jobs",
        "2",
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "2",
    )
    jobs = _scheduled_jobs(run.stdout + run.stderr)
    submitted = dict(SUBMITTED.findall(run.stdout + run.stderr))  # Snakemake job id -> SLURM job id
    remote = {jobid for jobid, (kind, _) in jobs.items() if kind == "rule"}
    assert remote and remote <= set(submitted), f"jobs not submitted: {sorted(remote - set(submitted))}"
    local = {rule for kind, rule in jobs.values() if kind == "localrule"}
    assert local <= {
        "wer_table",
        "strategy_table",
        "accounting",
        "figures",
        "extract_omni",
        "export_model",
        "extract_searched",
        "split_dev",
        "tokenizer",
        "speed_table",
        "voices",
        "diagnostics",
        "all",
    }, local
    states = cluster.completed_jobs()
    print("sacct -c (SLURM job id, state, rule):")
    for jobid in sorted(remote, key=int):
        print(f"  {submitted[jobid]:>4} {states.get(submitted[jobid])} {jobs[jobid][1]}")
    assert {states.get(submitted[jobid]) for jobid in remote} == {"COMPLETED"}
    for name in TABLES:  # every number but the measured job costs (strategies.csv: job_vs_*)
        local, remote = (
            pd.read_csv(tmp_path / where / "results" / "smoke" / "tables" / name).filter(regex=r"^(?!job_)")
            for where in ("local", "slurm")
        )
        pd.testing.assert_frame_equal(remote, local, check_exact=True, obj=name)
