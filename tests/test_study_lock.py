"""One run per results folder: Snakemake's own lock is lost when any other run in the working directory
exits (reproduced here on a Snakefile of two rules), so the study locks its results folder itself
(omni.study_lock, taken in the Snakefile's `onstart`); real snakemake processes throughout."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from omni.study_lock import LOCK_FILE
from tests.conftest import REPO
from tests.faults import FaultRecorder
from tests.test_pipeline import SNAKEMAKE

TIMEOUT_S = 300
JOB_STARTED = re.compile(r"^(local)?rule \w+:$", re.MULTILINE)  # the header Snakemake prints as a job starts


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def start(command: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    """A snakemake run in the background, in its own process group (its jobs are stopped with it)."""
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """A snakemake run to its end; one that outlasts the timeout is stopped with its jobs."""
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        stop(process)
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


TINY_SNAKEFILE = """
rule slow:
    output: "slow.txt"
    shell: "sleep 600 && touch {output}"

rule other:
    output: "other.txt"
    shell: "touch {output}"
"""


def test_snakemake_deletes_a_running_runs_lock_when_another_run_exits(tmp_path: Path) -> None:
    """Snakemake 9.27.1: a run holds its lock while its job runs and refuses a second run of it, until
    any other run in the directory exits (FilePersistence._delete_locks removes all of .snakemake/locks);
    then the second run starts the running job again."""
    (tmp_path / "Snakefile").write_text(TINY_SNAKEFILE)
    snakemake = [sys.executable, "-m", "snakemake", "--cores", "1"]
    locks = tmp_path / ".snakemake" / "locks"
    holder = start([*snakemake, "slow.txt"], tmp_path, tmp_path / "holder.log")
    restart = None
    try:
        wait_until(lambda: any("slow.txt" in lock.read_text() for lock in locks.glob("*.lock")), "the lock")
        refused = run([*snakemake, "slow.txt"], tmp_path)
        assert refused.returncode != 0 and "LockException" in refused.stdout + refused.stderr
        other = run([*snakemake, "other.txt"], tmp_path)
        assert other.returncode == 0, other.stderr[-3000:]
        assert not locks.exists() and holder.poll() is None
        restart = start([*snakemake, "slow.txt"], tmp_path, tmp_path / "restart.log")
        wait_until(lambda: "rule slow:" in (tmp_path / "restart.log").read_text(), "the restarted job")
        assert holder.poll() is None  # two runs now run the same job
    finally:
        stop(holder)
        if restart is not None:
            stop(restart)


@pytest.mark.fault("concurrent runs")
def test_a_running_study_refuses_a_second_run_of_its_folder_and_frees_it_when_killed(
    tmp_path: Path, fault: FaultRecorder
) -> None:
    """The smoke study runs; the working directory is unlocked (Snakemake's locks are gone, as after any
    other run) and the study started again: refused before any job, naming the folder and the running
    process. A study with another results_dir runs beside it; once the first is killed its folder is free."""
    folder = (tmp_path / "results" / "smoke").resolve()
    study = start([*SNAKEMAKE, "--directory", str(tmp_path)], tmp_path, tmp_path / "study.log")
    try:
        record = folder / LOCK_FILE
        wait_until(lambda: record.exists() and record.read_text().split("\n")[0] == str(study.pid), "the study lock")
        unlocked = run([*SNAKEMAKE, "--directory", str(tmp_path), "--unlock"], tmp_path)
        assert unlocked.returncode == 0, unlocked.stderr[-3000:]
        assert not (tmp_path / ".snakemake" / "locks").exists()
        again = run([*SNAKEMAKE, "--directory", str(tmp_path), "--rerun-incomplete"], tmp_path)
        output = again.stdout + again.stderr
        assert again.returncode != 0
        fault.named(output, str(folder))
        assert f"results folder {folder} is in use: process {study.pid}" in output, output[-3000:]
        fault.data_lost(len(JOB_STARTED.findall(output)), "jobs the refused run started in the running study's folder")
        assert not JOB_STARTED.search(output)
        other = run(
            [
                *SNAKEMAKE,
                "--directory",
                str(tmp_path),
                "results/other/corpus/synth.json",
                "--config",
                "results_dir=results/other",
            ],
            tmp_path,
        )
        assert other.returncode == 0, other.stderr[-3000:]
        assert (tmp_path / "results" / "other" / "corpus" / "synth.json").exists()
        assert study.poll() is None  # the other study ran while this one held its folder
    finally:
        stop(study)
    take = f"from omni.study_lock import lock_study; lock_study({str(folder)!r})"
    free = subprocess.run([sys.executable, "-c", take], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert free.returncode == 0, free.stderr
    fault.survived(
        "a second run of a running study's folder (its Snakemake locks gone) refused before any job, "
        "naming the folder and the process; another results_dir ran beside it; SIGKILLed, the folder is free"
    )
