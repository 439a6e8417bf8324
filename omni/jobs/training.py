"""One training job end to end (dense, individual or supernet): load data and the starting
weights, train with the arm's gradient strategy, write the model, its log and its cost record.

Several processes (train.cpu_processes on a CPU, one per GPU on CUDA) train data-parallel through torchrun
and DistributedDataParallel (omni.asr.parallel): every rank builds the same model from the same seed, then
draws its own augmentation; rank 0 writes every output, the job's own process the cost record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from omni.asr.checkpoints import CheckpointFolder
from omni.asr.frontend import Frontend
from omni.asr.model import ModelConfig, blank_id, build_model, load_model, model_config_from, save_model
from omni.asr.parallel import Ranks, launch
from omni.asr.trainer import Distillation, GradientStrategy, Trainer, TrainSettings
from omni.atomic import atomic_path, sweep_temporaries
from omni.costs import CostMeter, peak_mem_mb
from omni.data.augment import WaveAugment
from omni.data.batches import BatchStream, LogitsBound, UtteranceSet
from omni.data.features import LogMel, SpecAugment, load_feature_stats
from omni.data.manifest import read_manifest
from omni.data.tokenizer import Tokenizer
from omni.jobs.specs import (
    JOB_KINDS,
    IndividualJob,
    Section,
    SupernetJob,
    TrainingJob,
    TrainingSpec,
    from_plain,
)
from omni.runtime import resolve_device, seed_everything, set_threads
from omni.sparsity.gradual import GradualPruning
from omni.sparsity.specs import TeacherSpec
from omni.sparsity.supernet import SupernetGradients


@dataclass
class TrainPaths:
    manifest: Path
    feature_stats: Path
    tokenizer: Path
    model_out: Path
    log_out: Path
    cost_out: Path
    checkpoint_dir: Path
    init_model: Path | None = None


@dataclass(frozen=True)
class TrainingSetup:
    """What every training job reads besides its kind's own spec: its loop settings, and the rule's
    front-end and model sections (omni.job_params), which the data and model code take as built objects."""

    training: TrainingSpec
    logmel: Section  # job_params.logmel
    augmentation: Section  # job_params.augmentation
    model: Section | None = None  # job_params.model; None = take the starting model's

    @property
    def seed(self) -> int:
        return self.training.seed


def distillation(teacher: TeacherSpec | None, init_model: Path | None, device: torch.device) -> Distillation | None:
    """A frozen copy of the starting (dense) model as teacher, or in place (the gradient strategy passes
    the step's densest sub-network); None without a teacher."""
    if teacher is None:
        return None
    if teacher.inplace:
        return Distillation(teacher.weight, teacher.form)
    if init_model is None:
        raise ValueError("a dense teacher is the starting model; a job trained from scratch has none")
    model, _ = load_model(init_model)
    model.to(device).eval().requires_grad_(False)
    return Distillation(teacher.weight, teacher.form, model)


def train_settings(training: TrainingSpec, steps: int) -> TrainSettings:
    """The loop's settings for a job of `steps` steps (its lr warm-up may be a fraction of them)."""
    return TrainSettings(
        steps=steps,
        lr=training.lr,
        weight_decay=training.weight_decay,
        warmup_steps=training.lr_warmup_steps(steps),
        grad_clip=training.grad_clip,
        checkpoint_every=training.checkpoint_every,
        log_every=training.log_every,
        max_consecutive_nonfinite=training.max_consecutive_nonfinite,
        bf16=training.bf16,
    )


StrategyFactory = Callable[[torch.nn.Module], GradientStrategy]
RANK_SEED_STRIDE = 1_000_003
"""Rank r > 0 reseeds its augmentation RNG with seed + r * this (rank 0 keeps the 1-process stream)."""


# Raised when what a checkpoint holds or means changes, so older checkpoints are not resumed into
# a different computation. 2: augmentation seeded per batch, the data stream counts its steps.
# 3: a SHA-256 checksum over each file (omni.asr.checkpoints), the train log up to its step inside.
# 4: fingerprinted by the job's typed spec (omni.jobs.specs), every field with its value (the computation
# is unchanged; older checkpoints simply do not resume).
CHECKPOINT_FORMAT = 4


def fingerprint(setup: TrainingSetup, job: TrainingJob) -> str:
    """Identifies what a checkpoint belongs to: exactly the values the job was given, and the format."""
    blob = json.dumps(
        {"format": CHECKPOINT_FORMAT, "setup": dataclasses.asdict(setup), "job": _plain_job(job)},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def processes_for(training: TrainingSpec, device: torch.device) -> int:
    """Data-parallel processes of a job: one per visible GPU on `device: cuda` (a scheduler's
    allocation decides which are visible), one on a named GPU (`cuda:N`), train.cpu_processes on a CPU."""
    if device.type == "cuda":
        return torch.cuda.device_count() if device.index is None else 1
    return training.cpu_processes


def strategy_for(job: TrainingJob, seed: int) -> StrategyFactory:
    """The gradient strategy of a job, by its kind (every rank builds its own)."""
    if isinstance(job, IndividualJob):
        return lambda model: GradualPruning(model, job.masks, job.sparsity, job.steps, job.ramp)
    if isinstance(job, SupernetJob):
        return lambda model: SupernetGradients.for_spec(model, job.masks, job.supernet, seed)
    return GradientStrategy  # the dense job and the control: plain gradients


def _plain_job(job: TrainingJob) -> dict[str, Any]:
    return {"kind": type(job).__name__, **dataclasses.asdict(job)}


@dataclass(frozen=True)
class RankJob:
    """What every rank of a training job is given: plain values, written as JSON for torchrun's ranks."""

    setup: TrainingSetup
    job: TrainingJob
    paths: TrainPaths
    threads: int  # per rank
    halt_after: int | None = None

    def write(self, path: Path) -> None:
        values = {**dataclasses.asdict(self), "job": _plain_job(self.job)}
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(values, default=str, indent=1))

    @classmethod
    def read(cls, path: Path) -> RankJob:
        values = json.loads(Path(path).read_text())
        # write() gives every path, None for an optional one that is absent (init_model): left to its default
        paths = {key: Path(value) for key, value in values["paths"].items() if value is not None}
        setup = values["setup"]
        return cls(
            setup=TrainingSetup(**{**setup, "training": from_plain(TrainingSpec, setup["training"])}),
            job=from_plain(JOB_KINDS[values["job"]["kind"]], values["job"]),
            paths=TrainPaths(**paths),
            threads=values["threads"],
            halt_after=values["halt_after"],
        )


@dataclass(frozen=True)
class RankOutcome:
    """What rank 0 reports back: the cost record's measured fields, and whether the job finished."""

    finished: bool
    steps: int
    subnet_passes: int
    audio_seconds: float
    nonfinite_skipped: int
    resumed_wall_s: float  # wall time of earlier segments of a resumed job
    peak_mem_mb: float  # summed over ranks


JOB_FILE, OUTCOME_FILE = "rank_job.json", "rank_outcome.json"  # in the job's checkpoint folder
RANK_MODULE = "omni.jobs.training_rank"


def run_training_job(
    setup: TrainingSetup,
    job: TrainingJob,
    paths: TrainPaths,
    threads: int,
    halt_after: int | None = None,
) -> None:
    """`threads` is the job's whole CPU budget, shared by its processes. One process trains here; several
    are started by torchrun (omni.asr.parallel.launch), each building the job's strategy from its spec."""
    device = resolve_device(setup.training.device)
    processes = processes_for(setup.training, device)
    # Before any process of this job writes there: what is left is a killed write's, never finished.
    for leftover in sweep_temporaries(paths.checkpoint_dir):
        print(f"removed {leftover}: the temporary of a write killed before it finished", file=sys.stderr)
    if processes > threads and device.type == "cpu":
        print(
            f"warning: config key 'train.cpu_processes' ({processes}) exceeds this job's {threads} thread(s); "
            f"the processes will share cores",
            file=sys.stderr,
        )
    meter = CostMeter(
        job.rule,
        job.arm,
        job.sparsity,
        device,
        threads,
        processes=processes,
        devices=processes if device.type == "cuda" else 1,
    )
    rank_job = RankJob(setup, job, paths, max(1, threads // processes), halt_after)
    if processes == 1:
        outcome = train_rank(rank_job, Ranks(), device)
    else:
        paths.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        rank_job.write(paths.checkpoint_dir / JOB_FILE)
        (paths.checkpoint_dir / OUTCOME_FILE).unlink(missing_ok=True)
        launch(processes, RANK_MODULE, [str(paths.checkpoint_dir / JOB_FILE)])
        outcome = RankOutcome(**json.loads((paths.checkpoint_dir / OUTCOME_FILE).read_text()))
    if not outcome.finished:
        return  # halted on purpose (tests); outputs are written only by a finished job
    meter.prior_wall_s = outcome.resumed_wall_s  # earlier segments of a resumed job count too
    meter.finish(
        paths.cost_out,
        steps=outcome.steps,
        subnet_passes=outcome.subnet_passes,
        audio_hours=outcome.audio_seconds / 3600.0,
        peak_mem_mb=max(outcome.peak_mem_mb, meter.peak_mem_mb()),
        extra={"nonfinite_skipped": outcome.nonfinite_skipped, "resumed_wall_s": outcome.resumed_wall_s},
    )


def logits_bound(setup: TrainingSetup, model_config: ModelConfig) -> LogitsBound | None:
    """The joiner-output bound of train.max_logits, at the slowest speed perturbation; None when unset."""
    if setup.training.max_logits is None:
        return None
    speeds = setup.augmentation["wave_augment"]["speed_factors"]
    return LogitsBound(
        max_elements=setup.training.max_logits,
        symbols=model_config["num_symbols"],
        hop_length=setup.logmel["hop_length"],
        stride=model_config["time_reduction_stride"],
        right_context=model_config["right_context_length"],
        slowest_speed=min(min(speeds), 1.0),
    )


def batch_stream(
    setup: TrainingSetup, utterances: UtteranceSet, model_config: ModelConfig, ranks: Ranks, pin_memory: bool
) -> BatchStream:
    """A job's training batches from its sections (one place: benchmarks/data_scale.py times this very
    stream at LibriSpeech scale). The curriculum is the dense job's (job_params.training turns it off for
    jobs that start trained): from scratch, the mapping is learnt much faster from clean speech;
    augmentation afterwards adds the robustness (train.dense_clean_steps; 0 for jobs that start trained)."""
    training = setup.training
    samples_budget = training.batch_frames * setup.logmel["hop_length"]
    return BatchStream(
        utterances,
        samples_budget,
        setup.seed,
        sortagrad=training.sortagrad,
        rank=ranks.rank,
        world=ranks.world,
        logits_bound=logits_bound(setup, model_config),
        workers=training.loader_workers,
        pin_memory=pin_memory,
        augment=WaveAugment(setup.augmentation["wave_augment"], setup.logmel["sample_rate"]),
        clean_steps=training.clean_steps,
    )


def train_rank(rank_job: RankJob, ranks: Ranks, device: torch.device) -> RankOutcome:
    """One rank's share of a training job; rank 0 writes the model and the log."""
    setup, job, paths = rank_job.setup, rank_job.job, rank_job.paths
    set_threads(rank_job.threads)
    seed_everything(setup.seed)
    training = setup.training

    tokenizer = Tokenizer(paths.tokenizer)
    if paths.init_model is None:
        if setup.model is None:
            raise ValueError("a training job from scratch needs the model section (omni.job_params.model)")
        model_config = model_config_from(setup.model, num_symbols=tokenizer.vocab_size + 1)
        model = build_model(model_config)
    else:
        model, artefact = load_model(paths.init_model)
        model_config = artefact["model_config"]
    model.to(device)
    blank = blank_id(model_config)
    stats = load_feature_stats(paths.feature_stats)
    sample_rate = setup.logmel["sample_rate"]
    frontend = Frontend(
        LogMel.from_section(setup.logmel),
        stats,
        model_config["right_context_length"],
        SpecAugment(setup.augmentation["spec_augment"]),
    ).to(device)
    utterances = UtteranceSet(read_manifest(paths.manifest), tokenizer, sample_rate, cache_audio=training.cache_audio)
    stream = batch_stream(setup, utterances, model_config, ranks, pin_memory=device.type == "cuda")
    strategy = strategy_for(job, setup.seed)(model)
    if ranks.rank > 0:
        torch.manual_seed(setup.seed + ranks.rank * RANK_SEED_STRIDE)
    settings = train_settings(training, job.steps)
    trainer = Trainer(
        model,
        frontend,
        strategy,
        stream,
        settings,
        blank,
        device,
        CheckpointFolder(paths.checkpoint_dir, fingerprint(setup, job)),
        paths.checkpoint_dir / "train_log.csv",
        description=job.arm if job.sparsity is None else f"{job.arm}:{job.sparsity:g}",
        halt_after=rank_job.halt_after,
        ranks=ranks,
        distillation=distillation(job.teacher, paths.init_model, device),
    )
    result = trainer.run()
    outcome = RankOutcome(
        finished=result.steps >= job.steps,
        steps=result.steps,
        subnet_passes=result.subnet_passes,
        audio_seconds=result.audio_seconds,
        nonfinite_skipped=result.nonfinite_skipped,
        resumed_wall_s=trainer.prior_wall_s,
        peak_mem_mb=sum(ranks.gather(peak_mem_mb(device))),
    )
    if outcome.finished and ranks.is_writer:
        state, masks = strategy.final_model()
        save_model(
            paths.model_out,
            state,
            model_config,
            masks,
            meta={
                "arm": job.arm,
                "sparsity": job.sparsity if job.sparsity is not None else 0.0,
                "steps": result.steps,
                "seed": setup.seed,
            },
            rankings=strategy.final_rankings(),
        )
        with atomic_path(paths.log_out) as tmp:
            shutil.copyfile(paths.checkpoint_dir / "train_log.csv", tmp)
    return outcome
