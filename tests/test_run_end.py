"""A run stopped on request says so: Snakemake ends it with "At least one job did not complete
successfully" although every job it ran completed; the Snakefile's onerror says what really happened."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from omni.run_end import unfinished_run_message
from tests.test_pipeline import SNAKEMAKE
from tests.test_study_lock import start, stop, wait_until

STOPPED = "no job failed: the run was stopped on request"


@pytest.mark.fault("kills")
def test_a_study_stopped_by_sigterm_says_no_job_failed_and_keeps_the_jobs_it_ran(tmp_path: Path, fault) -> None:
    log = tmp_path / "study.log"
    study = start([*SNAKEMAKE, "--directory", str(tmp_path)], tmp_path, log)
    try:
        wait_until(lambda: "rule build_corpus:" in log.read_text(), "the first job")
        study.send_signal(signal.SIGTERM)  # snakemake alone, as a scheduler's or `kill`'s SIGTERM reaches it
        assert study.wait(timeout=300) != 0
    finally:
        stop(study)
    output = log.read_text()
    fault.named(output, STOPPED, "Run the same command again")
    assert "At least one job did not complete successfully" in output  # Snakemake's own line is still there
    corpus = tmp_path / "results" / "smoke" / "corpus" / "synth.json"
    assert corpus.is_file(), "the job that ran when the signal came finished and was kept"
    fault.data_lost(0 if corpus.is_file() else 1, "finished jobs' outputs removed")
    rerun = subprocess.run(
        [*SNAKEMAKE, "--directory", str(tmp_path), "-n"], capture_output=True, text=True, timeout=300
    )
    assert "build_corpus" not in rerun.stdout.split("Job stats:")[1].split("total")[0]
    fault.survived(
        "SIGTERM during the first job: that job finished and was kept, no other started, the run "
        "said no job failed, and the rerun plans only what is left"
    )


def test_a_failed_job_is_named_as_the_cause(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text(
        "rule train_dense:\n    jobid: 3\nError in rule train_dense:\n    jobid: 3\n"
        "Error in rule evaluate:\n    jobid: 9\n"
    )
    message = unfinished_run_message([log])
    assert "jobs of evaluate, train_dense failed" in message and STOPPED not in message
    assert STOPPED in unfinished_run_message([tmp_path / "missing.log"])
