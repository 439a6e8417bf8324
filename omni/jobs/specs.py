"""The job boundary: a training job's rule params (plain dicts, omni.job_params) become typed, frozen specs
here, once; below it (omni.asr, omni.sparsity) code reads attributes, never dict keys.

A job's kind is its type (DenseJob, ControlJob, IndividualJob, SupernetJob), each carrying its step count;
Snakemake keeps comparing the plain params, so a changed value still reruns exactly its jobs. Plain
Python, no torch: the workflow computes a supernet's steps at parse time.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from omni.job_names import TRAIN_CONTROL, TRAIN_DENSE, TRAIN_INDIVIDUAL, TRAIN_OMNI
from omni.sparsity.specs import (
    NO_PRIVATE,
    UTTERANCE_LOSS,
    MaskSpec,
    PruningRamp,
    SupernetSpec,
    TeacherSpec,
)

Section = Mapping[str, Any]  # one rule params section, as omni.job_params declares it


@dataclass(frozen=True)
class TrainingSpec:
    """A training job's loop settings (omni.job_params.training). The defaults of the optional keys are
    their off values: omni.job_params declares such a key only when it is on."""

    seed: int
    device: str
    cpu_processes: int
    batch_frames: int
    weight_decay: float
    warmup_steps: int  # the dense job's lr warm-up; a job that starts trained may use `warmup_fraction`
    grad_clip: float
    checkpoint_every: int
    log_every: int
    max_consecutive_nonfinite: int
    cache_audio: bool
    lr: float
    clean_steps: int
    sortagrad: bool
    steps: int | None = None  # the dense job's; the other kinds carry their own
    max_logits: int | None = None
    bf16: bool = False
    loader_workers: int = 0
    warmup_fraction: float | None = None  # train.finetune_warmup_fraction, jobs that start trained

    def lr_warmup_steps(self, steps: int) -> int:
        """Over train.finetune_warmup_fraction of the job's own steps when set, else the dense job's
        train.warmup_steps."""
        if self.warmup_fraction is None:
            return self.warmup_steps
        return max(1, int(round(self.warmup_fraction * steps)))


OPTIONAL_TRAINING_KEYS = {
    field.name: field.default
    for field in dataclasses.fields(TrainingSpec)
    if field.name in ("max_logits", "bf16", "loader_workers")
}
"""train.* keys declared to a job only when on (omni.job_params), each with its off value."""


@dataclass(frozen=True)
class DenseJob:
    """Trains the dense model from scratch with plain gradients (no teacher)."""

    rule: ClassVar[str] = TRAIN_DENSE  # the cost record's `job` (omni.results.accounting)
    arm: str
    steps: int
    teacher: TeacherSpec | None = None

    @property
    def sparsity(self) -> float | None:
        return None


@dataclass(frozen=True)
class ControlJob(DenseJob):
    """The dense model trained on like a pruning job, no masks; learns from the arms' teacher."""

    rule: ClassVar[str] = TRAIN_CONTROL


@dataclass(frozen=True)
class IndividualJob:
    """Gradual magnitude pruning to one sparsity on the individual job's cubic ramp."""

    rule: ClassVar[str] = TRAIN_INDIVIDUAL
    arm: str
    sparsity: float
    steps: int
    ramp: PruningRamp
    masks: MaskSpec
    teacher: TeacherSpec | None


@dataclass(frozen=True)
class SupernetJob:
    """One weight-shared supernet of the arm's levels; its steps follow from its budget."""

    rule: ClassVar[str] = TRAIN_OMNI
    arm: str
    supernet: SupernetSpec
    masks: MaskSpec

    @property
    def steps(self) -> int:
        return self.supernet.steps

    @property
    def sparsity(self) -> float | None:
        return None

    @property
    def teacher(self) -> TeacherSpec | None:
        return self.supernet.teacher


TrainingJob = DenseJob | ControlJob | IndividualJob | SupernetJob
JOB_KINDS: dict[str, type[TrainingJob]] = {kind.__name__: kind for kind in typing.get_args(TrainingJob)}


def training_spec(section: Section) -> TrainingSpec:
    """omni.job_params.training -> its spec (a key the spec does not know is an error, not ignored)."""
    return TrainingSpec(**section)


def mask_spec(section: Section) -> MaskSpec:
    """omni.job_params.masks -> which weights are prunable, in what units."""
    return MaskSpec(
        granularity=section["granularity"],
        block_shape=(int(section["block_shape"][0]), int(section["block_shape"][1])),
        prunable=tuple(section["prunable"]),
        include_predictor=bool(section["include_predictor"]),
        include_joiner=bool(section["include_joiner"]),
        include_io_linears=bool(section["include_io_linears"]),
    )


def teacher_spec(section: Section) -> TeacherSpec | None:
    """An arm section's optional `distill` entry (present only when the arm has a teacher): the one reader."""
    entry = section.get("distill")
    if entry is None:
        return None
    return TeacherSpec(entry["teacher"], entry["weight"], entry["form"], entry.get("forward_cost", 0.0))


def supernet_spec(section: Section) -> SupernetSpec:
    """omni.job_params.supernet -> the supernet's spec; matched mechanics carry what they follow."""
    ramp = section.get("individual_ramp")
    settled = section.get("settled_rankings")
    levels = tuple(sorted(section["levels"]))
    weights = section["level_weights"]
    if isinstance(weights, list) and len(weights) == len(levels):  # in the configured order: keep their levels
        by_level = dict(zip(section["levels"], weights))
        weights = [by_level[level] for level in levels]
    return SupernetSpec(
        sampling=section["sampling"],
        levels=levels,
        level_space=section["level_space"],
        continuous_range=(section["continuous_range"][0], section["continuous_range"][1]),
        random_levels=section["random_levels"],
        warmup_fraction=section["warmup_fraction"],
        mask_update_every=section["mask_update_every"],
        budget=section["budget"],
        level_weights=tuple(weights) if isinstance(weights, list) else weights,
        layerwise_rate=section["layerwise_rate"],
        unused_weights=section["unused_weights"],
        teacher=teacher_spec(section),
        layer_levels=tuple(section.get("layer_levels", ())),
        individual_ramp=None if ramp is None else PruningRamp(ramp["prune_fraction"], ramp["mask_update_every"]),
        freeze_fraction=None if settled is None else settled["freeze_fraction"],
        distinct_passes=section.get("distinct_passes", False),
        level_loss=section.get("level_loss", UTTERANCE_LOSS),
        private_parameters=section.get("private_parameters", NO_PRIVATE),
    )


def dense_job(training: Section) -> DenseJob:
    return DenseJob(arm="dense", steps=training["steps"])


def control_job(control: Section) -> ControlJob:
    return ControlJob(arm="control", steps=control["steps"], teacher=teacher_spec(control))


def individual_job(arm: str, sparsity: float, individual: Section, masks: Section) -> IndividualJob:
    return IndividualJob(
        arm=arm,
        sparsity=sparsity,
        steps=individual["steps"],
        ramp=PruningRamp(individual["prune_fraction"], individual["mask_update_every"]),
        masks=mask_spec(masks),
        teacher=teacher_spec(individual),
    )


def supernet_job(arm: str, supernet: Section, masks: Section) -> SupernetJob:
    return SupernetJob(arm=arm, supernet=supernet_spec(supernet), masks=mask_spec(masks))


Spec = TypeVar("Spec")


def from_plain(cls: type[Spec], values: Any) -> Spec:
    """A spec back from `dataclasses.asdict` of it, as JSON gives it (lists for tuples): what a job's
    data-parallel ranks read from the job file."""
    hints = typing.get_type_hints(cls)
    fields = {field.name for field in dataclasses.fields(cls) if field.init}  # type: ignore[arg-type]
    return cls(**{name: _typed(hints[name], value) for name, value in values.items() if name in fields})


def _typed(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        if dataclasses.is_dataclass(option) and isinstance(value, Mapping):
            return from_plain(option, value)  # type: ignore[arg-type]
        if typing.get_origin(option) is tuple and isinstance(value, list):
            return tuple(value)
    return value
