"""Checkpoint integrity on real training jobs: a damaged newest checkpoint is named, moved aside and the
next older one resumed (none intact: the job starts over), ending exactly where an undisturbed job ends;
a write killed mid-way leaves a temporary the next run sweeps; a lost train log is rebuilt."""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
import torch

from omni.asr.checkpoints import HEADER, read_checkpoint, write_checkpoint
from omni.atomic import load_torch
from omni.jobs.training import JobSpec, TrainingSetup, TrainPaths, run_training_job
from tests.conftest import REPO, PreparedData, paths, training_setup

STEPS, EVERY, HALT = 6, 2, 4   # checkpoints at steps 2, 4, 6; a job halted after 4 holds those of 2 and 4
SPEC = JobSpec("train_dense", "dense", None, STEPS)
Finished = tuple[dict[str, torch.Tensor], pd.DataFrame]


def setup_for(prepared: PreparedData, processes: int) -> TrainingSetup:
    config = json.loads(json.dumps(prepared.config))
    config["train"].update(checkpoint_every=EVERY, cpu_processes=processes)
    return training_setup(config, "dense")


def finished(job: TrainPaths) -> Finished:
    """The final model's tensors and its train log, less the wall-clock column (timings differ run to run)."""
    return load_torch(job.model_out)["state_dict"], pd.read_csv(job.log_out, dtype=str).drop(columns="wall_s")


@pytest.fixture(scope="module")
def undisturbed(prepared: PreparedData, tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], Finished]:
    """The job run straight through, once per number of processes."""
    runs: dict[int, Finished] = {}

    def run(processes: int) -> Finished:
        if processes not in runs:
            job = paths(prepared, tmp_path_factory.mktemp(f"undisturbed{processes}"))
            run_training_job(setup_for(prepared, processes), SPEC, job, processes)
            runs[processes] = finished(job)
        return runs[processes]
    return run


def halted(prepared: PreparedData, folder: Path, processes: int = 1) -> TrainPaths:
    job = paths(prepared, folder)
    run_training_job(setup_for(prepared, processes), SPEC, job, processes, halt_after=HALT)
    assert sorted(p.name for p in job.checkpoint_dir.glob("step*.pt")) == ["step00000002.pt", "step00000004.pt"]
    return job


def resume(prepared: PreparedData, job: TrainPaths, capsys: pytest.CaptureFixture, processes: int = 1) -> str:
    """Rerun the job to its end; what it wrote to stderr (its log)."""
    capsys.readouterr()
    run_training_job(setup_for(prepared, processes), SPEC, job, processes)
    return capsys.readouterr().err


def assert_same_run(job: TrainPaths, reference: Finished) -> None:
    (weights, log), (reference_weights, reference_log) = finished(job), reference
    assert weights.keys() == reference_weights.keys()
    for name in reference_weights:
        assert torch.equal(weights[name], reference_weights[name]), name
    assert log["step"].tolist() == [str(step) for step in range(1, STEPS + 1)]
    pd.testing.assert_frame_equal(log, reference_log)


# ---------------------------------------------------------------- kinds of damage to a checkpoint file

def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def replace_with_random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(path.stat().st_size))


def empty(path: Path) -> None:
    path.write_bytes(b"")


def flip_weight_bits(path: Path) -> None:
    """The 8 bits of one byte in the middle of the largest weight tensor's stored bytes: damage that
    torch.load alone accepts, resuming a different model."""
    state = read_checkpoint(path)
    name, weight = max(state["model"].items(), key=lambda item: item[1].numel())
    data = bytearray(path.read_bytes())
    start = data.find(weight.numpy().tobytes())
    assert start >= 0, "the tensor's bytes are stored as they are"
    data[start + weight.numel() * weight.element_size() // 2] ^= 0xFF
    path.write_bytes(data)
    payload = io.BytesIO(bytes(data[len(HEADER) + hashlib.sha256().digest_size:]))
    assert not torch.equal(torch.load(payload, weights_only=True)["model"][name], weight)


def strip_checksum(path: Path) -> None:
    """The same state as the format before checksums wrote it: a plain torch.save."""
    torch.save(read_checkpoint(path), path)


@pytest.mark.parametrize(("damage", "reason"), [
    (truncate, "fails its SHA-256 checksum"),
    (replace_with_random_bytes, "is not a checkpoint file"),
    (empty, "is empty"),
    (flip_weight_bits, "fails its SHA-256 checksum"),
    (strip_checksum, "has no checksum"),
])
def test_a_damaged_newest_checkpoint_is_moved_aside_and_the_older_one_resumed(
        prepared: PreparedData, tmp_path: Path, undisturbed: Callable[[int], Finished],
        capsys: pytest.CaptureFixture, damage: Callable[[Path], None], reason: str) -> None:
    job = halted(prepared, tmp_path)
    newest = job.checkpoint_dir / "step00000004.pt"
    damage(newest)
    damaged = newest.read_bytes()
    log = resume(prepared, job, capsys)
    assert f"checkpoint {newest} {reason}" in log
    assert "moved aside to step00000004.pt.rejected" in log and "resumed from step 2\n" in log
    assert "weights_only=False" not in log
    assert (job.checkpoint_dir / "step00000004.pt.rejected").read_bytes() == damaged, "moved, not deleted"
    assert_same_run(job, undisturbed(1))


def test_every_rank_resumes_from_the_older_checkpoint(prepared: PreparedData, tmp_path: Path,
                                                      undisturbed: Callable[[int], Finished],
                                                      capsys: pytest.CaptureFixture) -> None:
    """Two processes: rank 0 rejects the damaged newest file, and both ranks resume the one it picked."""
    job = halted(prepared, tmp_path, processes=2)
    truncate(job.checkpoint_dir / "step00000004.pt")
    log = resume(prepared, job, capsys, processes=2)
    assert log.count("fails its SHA-256 checksum") == 1 and log.count("resumed from step 2\n") == 1
    assert_same_run(job, undisturbed(2))


def test_with_every_checkpoint_damaged_the_job_starts_over_and_says_so(
        prepared: PreparedData, tmp_path: Path, undisturbed: Callable[[int], Finished],
        capsys: pytest.CaptureFixture) -> None:
    job = halted(prepared, tmp_path)
    flip_weight_bits(job.checkpoint_dir / "step00000004.pt")
    empty(job.checkpoint_dir / "step00000002.pt")
    log = resume(prepared, job, capsys)
    assert log.index("step00000004.pt fails") < log.index("step00000002.pt is empty")
    assert "training starts over from step 0" in log and "resumed from" not in log
    assert sorted(p.name for p in job.checkpoint_dir.glob("*.rejected")) == ["step00000002.pt.rejected",
                                                                              "step00000004.pt.rejected"]
    assert_same_run(job, undisturbed(1))


class Forged:
    """What a forged checkpoint runs when unpickled without weights_only: it makes the folder `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.mkdir, (str(self.marker),)


def test_a_forged_checkpoint_with_a_valid_checksum_is_refused_unread(
        prepared: PreparedData, tmp_path: Path, undisturbed: Callable[[int], Finished],
        capsys: pytest.CaptureFixture) -> None:
    """The checksum guards against damage, not forgery: weights_only still refuses the pickle's code."""
    job = halted(prepared, tmp_path / "job")
    newest, marker = job.checkpoint_dir / "step00000004.pt", tmp_path / "payload-ran"
    write_checkpoint(newest, {"model": Forged(marker), "step": HALT})
    torch.load(io.BytesIO(newest.read_bytes()[len(HEADER) + hashlib.sha256().digest_size:]), weights_only=False)
    assert marker.exists(), "unprotected, the forged file runs its payload"
    marker.rmdir()
    log = resume(prepared, job, capsys)
    assert not marker.exists()
    assert f"checkpoint {newest} holds objects other than tensors" in log and "refused unread" in log
    assert "resumed from step 2\n" in log and "weights_only=False" not in log
    assert_same_run(job, undisturbed(1))


KILLED_WRITE = """import os, signal, sys
from omni.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"the first half of a checkpoint")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_temporary_of_a_write_killed_mid_way_is_swept_when_the_job_starts(
        prepared: PreparedData, tmp_path: Path, undisturbed: Callable[[int], Finished],
        capsys: pytest.CaptureFixture) -> None:
    job = halted(prepared, tmp_path)
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(job.checkpoint_dir / "step00000006.pt")],
                            cwd=REPO)
    assert killed.returncode == -9
    leftovers = [p for p in job.checkpoint_dir.iterdir() if p.name.startswith(".step00000006.pt.")]
    assert len(leftovers) == 1 and leftovers[0].name.endswith(".tmp")
    unrelated = job.checkpoint_dir / "notes.tmp"
    unrelated.write_text("not the atomic writer's: stays")
    log = resume(prepared, job, capsys)
    assert f"removed {leftovers[0]}: the temporary of a write killed" in log
    assert not leftovers[0].exists() and unrelated.exists()
    assert "resumed from step 4\n" in log
    assert_same_run(job, undisturbed(1))


def test_a_lost_train_log_is_rebuilt_from_the_checkpoint(prepared: PreparedData, tmp_path: Path,
                                                         undisturbed: Callable[[int], Finished],
                                                         capsys: pytest.CaptureFixture) -> None:
    """Before, the final log silently covered only the steps after the resume."""
    job = halted(prepared, tmp_path)
    live_log = job.checkpoint_dir / "train_log.csv"
    live_log.unlink()
    log = resume(prepared, job, capsys)
    assert f"{live_log} was missing: rebuilt from the checkpoint of step 4" in log
    assert_same_run(job, undisturbed(1))
