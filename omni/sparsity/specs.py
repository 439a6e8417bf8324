"""What a pruning job is told, as frozen types: which weights are prunable, the teacher, the individual
job's schedule, the supernet's settings and the compute arithmetic they imply.

Built once where a job starts (omni.jobs.specs, from its rule's plain params); everything below that
boundary reads attributes, never dict keys. Plain Python, no torch: the workflow computes a supernet's
steps at parse time, and `snakemake -n` should not pay for importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from omni.sparsity.budget import passes_per_step, ramp_steps, step_cost, supernet_steps, warmup_steps

DENSE_TEACHER, INPLACE_TEACHER = "dense", "inplace"  # distill.<arm>: the frozen dense model, or the step's densest
SHARED_RAMP, INDIVIDUAL_RAMPS = "shared", "individual"  # omni.level_ramps
UTTERANCE_LOSS, FRAME_LOSS = "utterance", "frame"  # omni.level_loss: what the loss-weighted EMA averages
NO_PRIVATE = "none"  # omni.private_parameters


@dataclass(frozen=True)
class MaskSpec:
    """Which weights are prunable and in what units they are ranked (sparsity.*, omni.job_params.masks)."""

    granularity: str  # unstructured | block | structured
    block_shape: tuple[int, int]
    prunable: tuple[str, ...]  # regular expressions over plain parameter names
    include_predictor: bool
    include_joiner: bool
    include_io_linears: bool


@dataclass(frozen=True)
class TeacherSpec:
    """What a distilling job learns from besides the labels (distill.*): the frozen dense model or, in a
    supernet, the step's densest sub-network (in place); a supernet's budget counts a dense teacher's
    forward pass at `forward_cost` of a training pass."""

    teacher: str  # dense | inplace
    weight: float
    form: str
    forward_cost: float = 0.0

    @property
    def inplace(self) -> bool:
        return self.teacher == INPLACE_TEACHER


@dataclass(frozen=True)
class PruningRamp:
    """The individual job's cubic ramp: over `prune_fraction` of a job's steps, masks updated every
    `mask_update_every` steps (a supernet with individual ramps follows the same)."""

    prune_fraction: float
    mask_update_every: int

    def steps(self, job_steps: int) -> int:
        return ramp_steps(self.prune_fraction, job_steps)


@dataclass(frozen=True)
class SupernetSpec:
    """The supernet job's settings (omni.*, with the levels it trains and its budget resolved by
    omni.job_params.supernet). Options added after studies had run are None / their off value when off."""

    sampling: str  # uniform | sandwich | fixed_set
    levels: tuple[float, ...]
    level_space: str  # discrete | continuous
    continuous_range: tuple[float, float]
    random_levels: int
    warmup_fraction: float
    mask_update_every: int
    budget: float  # training passes
    level_weights: None | str | tuple[float, ...]  # fixed weights: one per level of `levels` (sorted)
    layerwise_rate: float
    unused_weights: str  # adamw | frozen
    teacher: TeacherSpec | None = None
    layer_levels: tuple[float, ...] = ()  # per-layer choices of per-layer passes (search.levels)
    individual_ramp: PruningRamp | None = None  # omni.level_ramps: individual
    freeze_fraction: float | None = None  # omni.rankings: settled, from this fraction of the steps
    distinct_passes: bool = False
    level_loss: str = UTTERANCE_LOSS
    private_parameters: str = NO_PRIVATE

    @property
    def passes_per_step(self) -> int:
        return passes_per_step(self.sampling, len(self.levels), self.random_levels)

    @property
    def steps(self) -> int:
        """The job's steps: its budget of training passes over what one step costs (with a dense teacher's
        forward pass)."""
        forward_cost = self.teacher.forward_cost if self.teacher is not None else 0.0
        return supernet_steps(self.budget, step_cost(self.passes_per_step, forward_cost))

    @property
    def warmup_steps(self) -> int:
        """Steps over which the highest level grows on the shared cubic ramp."""
        return warmup_steps(self.warmup_fraction, self.steps)

    @property
    def level_ramps(self) -> str:
        return SHARED_RAMP if self.individual_ramp is None else INDIVIDUAL_RAMPS

    @property
    def freeze_step(self) -> int | None:
        """The step from which a settled supernet's rankings stay fixed; None while they move to the end."""
        return None if self.freeze_fraction is None else int(round(self.freeze_fraction * self.steps))

    @property
    def inplace_distillation(self) -> bool:
        return self.teacher is not None and self.teacher.inplace
