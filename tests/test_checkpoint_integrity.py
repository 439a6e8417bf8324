"""Checkpoint integrity on real training jobs: a damaged newest checkpoint is named, moved aside and the
next older one resumed (none intact: the job starts over), ending exactly where an undisturbed job ends;
a write killed mid-way leaves a temporary the next run sweeps; a lost train log is rebuilt; a job, or one
rank of a data-parallel job, SIGKILLed in the middle of a step resumes from its last checkpoint. Every
test is a fault probe (tests/faults.py)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch

from omni.asr.checkpoints import HEADER, read_checkpoint, write_checkpoint
from omni.asr.parallel import RankFailedError, launch
from omni.atomic import load_torch
from omni.jobs.specs import DenseJob
from omni.jobs.training import JOB_FILE, RankJob, TrainingSetup, TrainPaths, run_training_job
from omni.study import Study
from tests.conftest import REPO, PreparedData, paths, smoke_config, training_setup
from tests.faults import FaultRecorder, differing
from tests.test_study_lock import run, start, stop, wait_until

STEPS, EVERY, HALT = 6, 2, 4  # checkpoints at steps 2, 4, 6; a job halted after 4 holds those of 2 and 4
SPEC = DenseJob("dense", STEPS)
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


def assert_same_run(job: TrainPaths, reference: Finished, fault: FaultRecorder) -> None:
    (weights, log), (reference_weights, reference_log) = finished(job), reference
    rows = [
        i
        for i in range(max(len(log), len(reference_log)))
        if i >= min(len(log), len(reference_log)) or not log.iloc[i].equals(reference_log.iloc[i])
    ]
    fault.data_lost(
        differing(reference_weights, weights) + [f"log row {i + 1}" for i in rows],
        "tensors or train-log rows unlike the undisturbed job's",
    )
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
    payload = io.BytesIO(bytes(data[len(HEADER) + hashlib.sha256().digest_size :]))
    assert not torch.equal(torch.load(payload, weights_only=True)["model"][name], weight)


def strip_checksum(path: Path) -> None:
    """The same state as the format before checksums wrote it: a plain torch.save."""
    torch.save(read_checkpoint(path), path)


@pytest.mark.fault("corrupt checkpoints")
@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (truncate, "fails its SHA-256 checksum"),
        (replace_with_random_bytes, "is not a checkpoint file"),
        (empty, "is empty"),
        (flip_weight_bits, "fails its SHA-256 checksum"),
        (strip_checksum, "has no checksum"),
    ],
)
def test_a_damaged_newest_checkpoint_is_moved_aside_and_the_older_one_resumed(
    prepared: PreparedData,
    tmp_path: Path,
    undisturbed: Callable[[int], Finished],
    capsys: pytest.CaptureFixture,
    damage: Callable[[Path], None],
    reason: str,
    fault: FaultRecorder,
) -> None:
    job = halted(prepared, tmp_path)
    newest = job.checkpoint_dir / "step00000004.pt"
    damage(newest)
    damaged = newest.read_bytes()
    log = resume(prepared, job, capsys)
    fault.named(log, str(newest))
    assert f"checkpoint {newest} {reason}" in log
    assert "moved aside to step00000004.pt.rejected" in log and "resumed from step 2\n" in log
    assert "weights_only=False" not in log
    rejected = job.checkpoint_dir / "step00000004.pt.rejected"
    fault.data_lost(int(not rejected.exists() or rejected.read_bytes() != damaged), "damaged files deleted")
    assert rejected.read_bytes() == damaged, "moved, not deleted"
    assert_same_run(job, undisturbed(1), fault)
    fault.survived("named and moved aside; resumed from step 2 to the undisturbed job's weights and log")


@pytest.mark.fault("corrupt checkpoints")
def test_every_rank_resumes_from_the_older_checkpoint(
    prepared: PreparedData,
    tmp_path: Path,
    undisturbed: Callable[[int], Finished],
    capsys: pytest.CaptureFixture,
    fault: FaultRecorder,
) -> None:
    """Two processes: rank 0 rejects the damaged newest file, and both ranks resume the one it picked."""
    job = halted(prepared, tmp_path, processes=2)
    truncate(job.checkpoint_dir / "step00000004.pt")
    log = resume(prepared, job, capsys, processes=2)
    fault.named(log, str(job.checkpoint_dir / "step00000004.pt"))
    assert log.count("fails its SHA-256 checksum") == 1 and log.count("resumed from step 2\n") == 1
    assert_same_run(job, undisturbed(2), fault)
    fault.survived("2 processes: named once; both ranks resumed from step 2 to the undisturbed job's weights and log")


@pytest.mark.fault("corrupt checkpoints")
def test_with_every_checkpoint_damaged_the_job_starts_over_and_says_so(
    prepared: PreparedData,
    tmp_path: Path,
    undisturbed: Callable[[int], Finished],
    capsys: pytest.CaptureFixture,
    fault: FaultRecorder,
) -> None:
    job = halted(prepared, tmp_path)
    flip_weight_bits(job.checkpoint_dir / "step00000004.pt")
    empty(job.checkpoint_dir / "step00000002.pt")
    log = resume(prepared, job, capsys)
    fault.named(log, str(job.checkpoint_dir / "step00000004.pt"), str(job.checkpoint_dir / "step00000002.pt"))
    assert log.index("step00000004.pt fails") < log.index("step00000002.pt is empty")
    assert "training starts over from step 0" in log and "resumed from" not in log
    assert sorted(p.name for p in job.checkpoint_dir.glob("*.rejected")) == [
        "step00000002.pt.rejected",
        "step00000004.pt.rejected",
    ]
    assert_same_run(job, undisturbed(1), fault)
    fault.survived("both named and moved aside; started over from step 0, said so, and ended as the undisturbed job")


class Forged:
    """What a forged checkpoint runs when unpickled without weights_only: it makes the folder `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.mkdir, (str(self.marker),)


@pytest.mark.fault("malicious pickles")
def test_a_forged_checkpoint_with_a_valid_checksum_is_refused_unread(
    prepared: PreparedData,
    tmp_path: Path,
    undisturbed: Callable[[int], Finished],
    capsys: pytest.CaptureFixture,
    fault: FaultRecorder,
) -> None:
    """The checksum guards against damage, not forgery: weights_only still refuses the pickle's code."""
    job = halted(prepared, tmp_path / "job")
    newest, marker = job.checkpoint_dir / "step00000004.pt", tmp_path / "payload-ran"
    write_checkpoint(newest, {"model": Forged(marker), "step": HALT})
    torch.load(io.BytesIO(newest.read_bytes()[len(HEADER) + hashlib.sha256().digest_size :]), weights_only=False)
    assert marker.exists(), "unprotected, the forged file runs its payload"
    marker.rmdir()
    log = resume(prepared, job, capsys)
    assert not marker.exists()
    fault.named(log, str(newest))
    assert f"checkpoint {newest} holds objects other than tensors" in log and "refused unread" in log
    assert "resumed from step 2\n" in log and "weights_only=False" not in log
    assert_same_run(job, undisturbed(1), fault)
    fault.survived(
        "the payload never ran; the file was named and refused, and the job resumed from step 2 "
        "to the undisturbed job's weights and log"
    )


KILLED_WRITE = """import os, signal, sys
from omni.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"the first half of a checkpoint")
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.fault("kills")
def test_the_temporary_of_a_write_killed_mid_way_is_swept_when_the_job_starts(
    prepared: PreparedData,
    tmp_path: Path,
    undisturbed: Callable[[int], Finished],
    capsys: pytest.CaptureFixture,
    fault: FaultRecorder,
) -> None:
    job = halted(prepared, tmp_path)
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(job.checkpoint_dir / "step00000006.pt")], cwd=REPO)
    assert killed.returncode == -9
    leftovers = [p for p in job.checkpoint_dir.iterdir() if p.name.startswith(".step00000006.pt.")]
    assert len(leftovers) == 1 and leftovers[0].name.endswith(".tmp")
    unrelated = job.checkpoint_dir / "notes.tmp"
    unrelated.write_text("not the atomic writer's: stays")
    log = resume(prepared, job, capsys)
    fault.named(log, str(leftovers[0]))
    assert f"removed {leftovers[0]}: the temporary of a write killed" in log
    fault.data_lost(int(not unrelated.exists()), "files not the writer's removed")
    assert not leftovers[0].exists() and unrelated.exists()
    assert "resumed from step 4\n" in log
    assert_same_run(job, undisturbed(1), fault)
    fault.survived(
        "a checkpoint write SIGKILLed mid-way: its temporary named and swept (nothing else), the job "
        "resumed from step 4 to the undisturbed job's weights and log"
    )


@pytest.mark.fault("corrupt checkpoints")
def test_a_lost_train_log_is_rebuilt_from_the_checkpoint(
    prepared: PreparedData,
    tmp_path: Path,
    undisturbed: Callable[[int], Finished],
    capsys: pytest.CaptureFixture,
    fault: FaultRecorder,
) -> None:
    """Before, the final log silently covered only the steps after the resume."""
    job = halted(prepared, tmp_path)
    live_log = job.checkpoint_dir / "train_log.csv"
    live_log.unlink()
    log = resume(prepared, job, capsys)
    fault.named(log, str(live_log))
    assert f"{live_log} was missing: rebuilt from the checkpoint of step 4" in log
    assert_same_run(job, undisturbed(1), fault)
    fault.survived("named and rebuilt from the checkpoint; the final log and weights are the undisturbed job's")


# ---------------------------------------------------------------- a job or a rank SIGKILLed in a step

KILLED_IN = 3
KILLED_JOB_SECONDS = 600
"""tests/killed_job.py kills after the backward pass of step KILLED_IN + 1 = 4: the checkpoint of step 2 is
the newest, and the live train log already holds step 3, which the resumed job trains again."""


def killable(prepared: PreparedData, folder: Path, processes: int) -> TrainPaths:
    """The job's paths, and its rank job file with 1 thread per process (as run_training_job gives
    `undisturbed`'s jobs, whose threads equal their processes)."""
    job = paths(prepared, folder)
    job.checkpoint_dir.mkdir(parents=True)
    RankJob(setup_for(prepared, processes), SPEC, job, threads=1).write(job.checkpoint_dir / JOB_FILE)
    return job


def assert_killed_in_step_4(job: TrainPaths) -> None:
    assert sorted(p.name for p in job.checkpoint_dir.glob("step*.pt")) == ["step00000002.pt"]
    live_log = (job.checkpoint_dir / "train_log.csv").read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in live_log] == ["1", "2", "3"]
    assert not job.model_out.exists() and not job.log_out.exists(), "no finished-looking output"


@pytest.mark.fault("kills")
def test_a_job_killed_in_the_middle_of_a_step_resumes_exactly_from_its_last_checkpoint(
    prepared: PreparedData,
    tmp_path: Path,
    undisturbed: Callable[[int], Finished],
    capsys: pytest.CaptureFixture,
    fault: FaultRecorder,
) -> None:
    job = killable(prepared, tmp_path, processes=1)
    killed = subprocess.run(
        [sys.executable, "-m", "tests.killed_job", str(job.checkpoint_dir / JOB_FILE), str(KILLED_IN), "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert_killed_in_step_4(job)
    log = resume(prepared, job, capsys)
    assert "resumed from step 2\n" in log
    assert_same_run(job, undisturbed(1), fault)
    fault.survived(
        "SIGKILLed between step 4's backward pass and its optimizer step; the rerun resumed from "
        "step 2, rewrote the log's step 3, and ended as the undisturbed job"
    )


@pytest.mark.fault("kills")
def test_a_rank_killed_in_the_middle_of_a_step_fails_the_job_promptly_and_the_rerun_resumes_exactly(
    prepared: PreparedData,
    tmp_path: Path,
    undisturbed: Callable[[int], Finished],
    capsys: pytest.CaptureFixture,
    fault: FaultRecorder,
) -> None:
    """Rank 1 of 2 is SIGKILLed in step 4 while rank 0 waits for it in a collective."""
    job = killable(prepared, tmp_path, processes=2)
    started = time.monotonic()
    with pytest.raises(RankFailedError, match="failed with exit code"):
        launch(2, "tests.killed_job", [str(job.checkpoint_dir / JOB_FILE), str(KILLED_IN), "1"])
    failed_after = time.monotonic() - started
    assert failed_after < KILLED_JOB_SECONDS, "3 steps and the failure, not the 30-minute collective timeout"
    assert_killed_in_step_4(job)
    log = resume(prepared, job, capsys, processes=2)
    assert log.count("resumed from step 2\n") == 1
    assert_same_run(job, undisturbed(2), fault)
    fault.survived(
        f"rank 1 of 2 SIGKILLed in step 4: the job failed {failed_after:.0f} s after it started; the "
        "rerun resumed both ranks from step 2 and ended as the undisturbed 2-process job"
    )


# ---------------------------------------------------------------- a whole study SIGKILLed in a training job

STUDY_STEPS, STUDY_EVERY = 24, 2  # the smoke study's dense job, longer: the kill lands while it trains


@pytest.mark.fault("kills")
def test_a_study_killed_in_a_training_job_resumes_the_job_from_its_checkpoint_when_rerun(
    tmp_path: Path, fault: FaultRecorder
) -> None:
    """Real snakemake runs of the smoke study's dense model: the run is SIGKILLed (with its job) once a
    checkpoint past step 2 exists; Snakemake keeps the checkpoints (they are params, not outputs), so the
    rerun, after `--unlock`, resumes the job from its newest checkpoint and ends with the weights of the
    same job run straight through (the rule's own params, on the study's data files)."""
    overlay = {"train": {"dense_steps": STUDY_STEPS, "checkpoint_every": STUDY_EVERY}}
    (tmp_path / "overlay.yaml").write_text(json.dumps(overlay))
    snakemake = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--cores",
        "2",
        "--directory",
        str(tmp_path),
        "--configfile",
        str(REPO / "configs" / "smoke.yaml"),
        str(tmp_path / "overlay.yaml"),
    ]
    config = smoke_config(Path("results/smoke"), overlay)
    study = Study.from_config(config)
    target = study.dense_model_file("individual")
    checkpoints = tmp_path / study.checkpoints(*study.dense())

    def newest() -> int:
        return max((int(p.name[4:12]) for p in checkpoints.glob("step*.pt")), default=0)

    killed = start([*snakemake, "--", target], tmp_path, tmp_path / "killed.log")
    try:
        wait_until(lambda: newest() > STUDY_EVERY or killed.poll() is not None, "a checkpoint past step 2")
    finally:
        stop(killed)
    assert killed.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()[-3000:]
    assert not (tmp_path / target).exists(), "killed in the job: no model yet"
    resumed_from = newest()
    assert STUDY_EVERY < resumed_from < STUDY_STEPS
    unlocked = run([*snakemake, "--unlock"], tmp_path)
    assert unlocked.returncode == 0, unlocked.stderr[-3000:]
    rerun = run([*snakemake, "--", target], tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    job_log = next((tmp_path / config["results_dir"] / "logs" / "train_dense").glob("*.log")).read_text()
    assert f"resumed from step {resumed_from}\n" in job_log

    straight_job = tmp_path / "straight"
    reference = TrainPaths(
        manifest=tmp_path / study.manifest("train"),
        feature_stats=tmp_path / study.feature_stats(),
        tokenizer=tmp_path / study.tokenizer(),
        model_out=straight_job / "model.pt",
        log_out=straight_job / "train_log.csv",
        cost_out=straight_job / "cost.json",
        checkpoint_dir=straight_job / "checkpoints",
    )
    run_training_job(
        training_setup(config, "dense"),
        DenseJob("dense", STUDY_STEPS),
        reference,
        config["threads"],
    )
    weights, straight = load_torch(tmp_path / target)["state_dict"], load_torch(reference.model_out)["state_dict"]
    steps = pd.read_csv(tmp_path / study.trained_files(*study.dense())["train_log"])["step"].tolist()
    fault.data_lost(
        differing(straight, weights) + sorted(set(range(1, STUDY_STEPS + 1)) - set(steps)),
        "tensors unlike the job run straight through, or steps missing from its log",
    )
    assert steps == list(range(1, STUDY_STEPS + 1))
    assert all(torch.equal(weights[name], straight[name]) for name in straight)
    fault.survived(
        f"snakemake and its dense job SIGKILLed after the checkpoint of step {resumed_from}; after "
        f"--unlock the rerun resumed the job from step {resumed_from} and ended with the weights of the job "
        "run straight through, every log step once"
    )
