"""The omni arm: one weight-shared supernet trained at many sparsities at once.

Every step samples sparsity levels, builds each sub-network's masks from the CURRENT shared
weights (one ranking per layer serves every level, so sub-networks are nested), runs forward/
backward for each, accumulates the gradients and takes one optimizer step. Rankings are
refreshed every `mask_update_every` steps, which amortises the sort over many steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from omni.asr.trainer import GradientStrategy, LossFn, StepResult
from omni.sparsity.budget import passes_per_step, warmup_steps
from omni.sparsity.layerwise import LayerwiseSampling
from omni.sparsity.masking import MaskedParameters
from omni.sparsity.masks import (
    LayerRanking,
    RankingState,
    all_kept_masks,
    cubic_sparsity,
    masks_at,
    original_weight,
    prunable_parameter_names,
    rank_layers,
    rerank_within_levels,
)
from omni.sparsity.private import PrivateParameters, is_copy, private_names
from omni.sparsity.specs import (
    FRAME_LOSS,
    INDIVIDUAL_RAMPS,
    NO_PRIVATE,
    SHARED_RAMP,
    UTTERANCE_LOSS,
    MaskSpec,
    SupernetSpec,
)

PASS_LEVEL, PASS_LOSS = "level_pass", "loss_pass"  # train_log.csv columns, numbered per pass of a step
PASS_LAYERWISE = "layerwise_pass"  # 1 when the pass trained a per-layer vector at its level's size
CHURN = "churn_"  # + level: share of the level's final mask that a re-ranking changed (NaN on other steps)
LOSS_WEIGHT_DECAY = 0.9  # level_weights "loss": each level's weight is this exponential average of its losses


class LevelWeights:
    """How the supernet draws its random levels (omni.level_weights): uniformly (None), with fixed
    weights (one per sparsity level, in the order of sparsity.levels), or "loss": in proportion to
    each level's recent training loss, so the hardest (usually the sparsest) level trains most.
    Until every level has been trained once, "loss" draws uniformly."""

    def __init__(self, setting: None | str | Sequence[float], levels: Sequence[float]) -> None:
        self.levels = sorted(levels)
        self.adaptive = setting == "loss"
        self.fixed = None
        if isinstance(setting, (list, tuple)):
            if len(setting) != len(levels) or min(setting) <= 0:
                raise ValueError(
                    f"omni.level_weights: {list(setting)} must hold one positive weight per level {list(levels)}"
                )
            by_level = dict(zip(levels, setting))
            self.fixed = torch.tensor([float(by_level[level]) for level in self.levels])
        self.average_loss: dict[float, float] = {}

    def current(self) -> torch.Tensor | None:
        if self.fixed is not None:
            return self.fixed
        if self.adaptive and len(self.average_loss) == len(self.levels):
            return torch.tensor([self.average_loss[level] for level in self.levels]).clamp_min(1e-6)
        return None

    def observe(self, level: float, loss: float) -> None:
        """A level's pass loss (capped warm-up levels that are no configured level are not counted)."""
        if not self.adaptive or level not in self.levels:
            return
        previous = self.average_loss.get(level)
        self.average_loss[level] = (
            loss if previous is None else (LOSS_WEIGHT_DECAY * previous + (1 - LOSS_WEIGHT_DECAY) * loss)
        )

    def state_dict(self) -> dict[str, Any]:
        return {"average_loss": dict(self.average_loss)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.average_loss = {float(level): float(loss) for level, loss in state["average_loss"].items()}


@dataclass
class LevelSampler:
    """Which sparsity levels one step trains.

    sandwich: the highest current level, the lowest, and `random_levels` random ones;
    uniform: one random level; fixed_set: every level. A random level is drawn uniformly, or with
    `weights` (one per level, any positive scale) given to `sample`.

    How a level's sparsity grows from dense (omni.level_ramps): `shared` (today's default) caps every
    level by ONE cubic ramp of the highest level over `warmup_steps`, so early steps do not train
    90 %-sparse sub-networks of a model that was never pruned; `individual` ramps each level on its
    own cubic schedule, the one its individual job follows (`ramp_steps`, `ramp_update_every`), so at
    every step a level is exactly as sparse as the model it is compared with. `distinct`: passes of
    one step at the same sparsity train one sub-network once (the sandwich's two passes while the
    levels are still ramped to the same value).
    """

    strategy: str
    levels: list[float]
    level_space: str
    continuous_range: tuple[float, float]
    random_levels: int
    warmup_steps: int
    update_every: int
    level_ramps: str = SHARED_RAMP
    ramp_steps: int = 0
    ramp_update_every: int = 1
    distinct: bool = False

    def __post_init__(self) -> None:
        if self.level_ramps not in (SHARED_RAMP, INDIVIDUAL_RAMPS):
            raise ValueError(f"omni.level_ramps: {self.level_ramps!r} is not one of {[SHARED_RAMP, INDIVIDUAL_RAMPS]}")
        if self.level_ramps == INDIVIDUAL_RAMPS and self.level_space != "discrete":
            raise ValueError("omni.level_ramps: individual ramps need level_space: discrete (one ramp per level)")

    @property
    def lowest(self) -> float:
        return min(self.levels) if self.level_space == "discrete" else self.continuous_range[0]

    @property
    def highest(self) -> float:
        return max(self.levels) if self.level_space == "discrete" else self.continuous_range[1]

    @property
    def ramp_end(self) -> int:
        """The step from which every level is at its target sparsity."""
        return self.ramp_steps if self.level_ramps == INDIVIDUAL_RAMPS else self.warmup_steps

    def current_highest(self, step: int) -> float:
        return cubic_sparsity(step, final=self.highest, ramp_steps=self.warmup_steps, update_every=self.update_every)

    def sparsity_at(self, level: float, step: int) -> float:
        """The sparsity a pass of `level` trains at `step`."""
        if self.level_ramps == INDIVIDUAL_RAMPS:
            return cubic_sparsity(step, final=level, ramp_steps=self.ramp_steps, update_every=self.ramp_update_every)
        return min(level, self.current_highest(step))

    def _draw(self, generator: torch.Generator, step: int, weights: torch.Tensor | None) -> tuple[float | None, float]:
        """One random level: (its target, the sparsity it trains at `step`); continuous: no target."""
        if self.level_space == "continuous":
            cap = self.current_highest(step)
            low = min(self.lowest, cap)
            return None, low + (cap - low) * float(torch.rand((), generator=generator))
        if weights is None:
            index = int(torch.randint(len(self.levels), (), generator=generator))
        else:
            index = int(torch.multinomial(weights, 1, generator=generator))
        return self.levels[index], self.sparsity_at(self.levels[index], step)

    def sample_targets(
        self, step: int, generator: torch.Generator, weights: torch.Tensor | None = None
    ) -> list[tuple[float | None, float]]:
        """The step's passes as (target level, sparsity trained now); `weights` (one per level of `levels`,
        discrete space) bias the random ones. Passes at one sparsity are one pass for fixed_set (and for
        the sandwich with `distinct`); the first level with that sparsity names it."""
        if weights is not None and (self.level_space != "discrete" or len(weights) != len(self.levels)):
            raise ValueError(f"level weights need the discrete space and one weight per level {self.levels}")
        if self.strategy == "uniform":
            return [self._draw(generator, step, weights)]
        if self.strategy == "fixed_set":
            return _distinct([(level, self.sparsity_at(level, step)) for level in sorted(self.levels, reverse=True)])
        passes: list[tuple[float | None, float]] = [
            (self.highest, self.sparsity_at(self.highest, step)),
            (self.lowest, self.sparsity_at(self.lowest, step)),
        ]
        passes += [self._draw(generator, step, weights) for _ in range(self.random_levels)]
        return _distinct(passes) if self.distinct else passes

    def sample(self, step: int, generator: torch.Generator, weights: torch.Tensor | None = None) -> list[float]:
        """The sparsities of the step's passes (sample_targets without the targets)."""
        return [sparsity for _, sparsity in self.sample_targets(step, generator, weights)]

    def passes_per_step(self) -> int:
        """Sub-network forward/backward passes a step costs (for the equal-budget rule)."""
        return passes_per_step(self.strategy, len(self.levels), self.random_levels)

    @classmethod
    def for_steps(cls, supernet: SupernetSpec, steps: int) -> LevelSampler:
        """The sampler of a supernet of `steps` steps (its job's own: `supernet.steps`): warm-up and
        individual ramps are fractions of them."""
        ramp = supernet.individual_ramp
        return cls(
            strategy=supernet.sampling,
            levels=sorted(supernet.levels),
            level_space=supernet.level_space,
            continuous_range=supernet.continuous_range,
            random_levels=supernet.random_levels,
            warmup_steps=warmup_steps(supernet.warmup_fraction, steps),
            update_every=supernet.mask_update_every,
            level_ramps=supernet.level_ramps,
            ramp_steps=0 if ramp is None else ramp.steps(steps),
            ramp_update_every=1 if ramp is None else ramp.mask_update_every,
            distinct=supernet.distinct_passes,
        )


def _distinct(passes: list[tuple[float | None, float]]) -> list[tuple[float | None, float]]:
    """The first pass at each sparsity, in order."""
    seen: dict[float, tuple[float | None, float]] = {}
    for target, sparsity in passes:
        seen.setdefault(sparsity, (target, sparsity))
    return list(seen.values())


class SupernetGradients(GradientStrategy):
    """Masks through a parametrization: every sub-network's pruned weights stay alive in the
    shared weights, and checkpoints hold them unmasked under plain names (exact resume)."""

    def __init__(
        self,
        model: torch.nn.Module,
        masks: MaskSpec,
        sampler: LevelSampler,
        update_every: int,
        seed: int,
        inplace_distillation: bool = False,
        level_weights: LevelWeights | None = None,
        layerwise: LayerwiseSampling | None = None,
        freeze_unused: bool = False,
        settled_from: int | None = None,
        level_loss: str = UTTERANCE_LOSS,
        private: str = NO_PRIVATE,
    ) -> None:
        """`inplace_distillation`: the step's densest sub-network trains first, on the labels, and every
        other sub-network of the step also learns its output distribution (in-place distillation).
        `freeze_unused`: a weight that none of the step's sub-networks keeps leaves the optimizer step
        as it entered it (plain AdamW moves it by momentum and decays it although no pass used it).
        `settled_from` (omni.rankings: settled): re-rankings never revive a unit a level had pruned
        (like the individual job's, inside its mask), and from this step on the rankings stay as they
        are, so every extracted mask is one the supernet trained for the whole frozen phase; None:
        every `update_every` steps all weights are ranked afresh, to the last step.
        `level_loss`: what the loss-weighted draws average per level: the pass's loss per utterance,
        or per encoder frame (batches bucketed by length then weigh alike).
        `private` (omni.private_parameters): each level its own copy of the encoder's LayerNorm
        parameters and prunable biases (and of the joiner), omni.sparsity.private."""
        if inplace_distillation and sampler.passes_per_step() < 2:
            raise ValueError(
                f"in-place distillation needs several sub-networks per step; sampling {sampler.strategy!r} trains one"
            )
        super().__init__(model)
        self.inplace_distillation = inplace_distillation
        self.level_weights = level_weights or LevelWeights(None, sampler.levels)
        self.layerwise = layerwise or LayerwiseSampling(0.0, (), 0)
        self.freeze_unused = freeze_unused
        self.settled_from = settled_from
        if level_loss not in (UTTERANCE_LOSS, FRAME_LOSS):
            raise ValueError(f"omni.level_loss: {level_loss!r} is not one of {[UTTERANCE_LOSS, FRAME_LOSS]}")
        self.level_loss = level_loss
        self.held: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # name -> (unused positions, their values)
        self.names = prunable_parameter_names(model, masks)
        self.granularity = masks.granularity
        self.block_shape = masks.block_shape
        self.masked = MaskedParameters(model, all_kept_masks(model, self.names))
        own = private_names(model, self.names, private)
        self.private = PrivateParameters(model, own, sampler.levels) if own else None
        self.sampler = sampler
        self.update_every = update_every
        self.generator = torch.Generator().manual_seed(seed)
        self.rankings: dict[str, LayerRanking] = {}
        self.step_levels: list[float] = []
        self.step_targets: list[float | None] = []  # the level each pass trains towards (its private copies)
        self.step_allocations: list[dict[str, float] | None] = []
        self.churn: dict[str, float] = {}  # this step's re-ranking, per level (omni.results.diagnostics)

    @classmethod
    def for_spec(cls, model: torch.nn.Module, masks: MaskSpec, supernet: SupernetSpec, seed: int) -> SupernetGradients:
        """The supernet job's strategy, its sampler on the job's own steps."""
        sampler = LevelSampler.for_steps(supernet, supernet.steps)
        return cls(
            model,
            masks,
            sampler,
            supernet.mask_update_every,
            seed,
            inplace_distillation=supernet.inplace_distillation,
            level_weights=LevelWeights(supernet.level_weights, supernet.levels),
            layerwise=LayerwiseSampling(supernet.layerwise_rate, supernet.layer_levels, sampler.ramp_end),
            freeze_unused=supernet.unused_weights == "frozen",
            settled_from=supernet.freeze_step,
            level_loss=supernet.level_loss,
            private=supernet.private_parameters,
        )

    def prepare(self, step: int) -> None:
        self.churn = {}
        if not self.rankings:
            self.rankings = rank_layers(self.model, self.names, self.granularity, self.block_shape)
        elif step % self.update_every == 0 and not self.frozen(step):
            previous = self.rankings
            if self.settled_from is None:
                self.rankings = rank_layers(self.model, self.names, self.granularity, self.block_shape)
            else:  # the masks trained since the last re-ranking: every level at the previous step
                trained = [self.sampler.sparsity_at(level, step - 1) for level in self.sampler.levels]
                self.rankings = rerank_within_levels(self.model, self.rankings, trained)
            self.churn = self._churn(previous) if self.sampler.level_space == "discrete" else {}
        passes = self.sampler.sample_targets(step, self.generator, self.level_weights.current())
        if self.inplace_distillation:
            passes = sorted(passes, key=lambda target_and_sparsity: target_and_sparsity[1])
        self.step_targets = [target for target, _ in passes]
        self.step_levels = [sparsity for _, sparsity in passes]
        self.step_allocations = [
            self.layerwise.draw(step, level, self.rankings, self.generator) for level in self.step_levels
        ]

    def _churn(self, previous: Mapping[str, LayerRanking]) -> dict[str, float]:
        """Per level, the share of its final mask's kept weights that the new ranking drops (and as many
        it takes in): how far the sub-network extraction would cut moved in one re-ranking."""
        churn = {}
        for level in self.sampler.levels:
            old, new = masks_at(previous, level), masks_at(self.rankings, level)
            kept = sum(int(mask.count_nonzero()) for mask in old.values())
            dropped = sum(int((old[name] & ~new[name]).count_nonzero()) for name in old)
            churn[f"{CHURN}{level:g}"] = dropped / kept if kept else 0.0
        return churn

    def frozen(self, step: int) -> bool:
        """Whether the rankings no longer change (a settled supernet after its freeze step)."""
        return self.settled_from is not None and step >= self.settled_from

    def accumulate(self, step: int, loss_fn: LossFn) -> StepResult:
        """Average of the sampled sub-networks' losses; gradients summed into the shared weights. Every
        pass runs even after a non-finite one (data-parallel ranks must run the same passes); the step
        is then skipped."""
        total = 0.0
        extra: dict[str, float] = {}
        teacher: torch.Tensor | None = None
        used: dict[str, torch.Tensor] = {}
        passes = len(self.step_levels)
        for position, (level, allocation) in enumerate(zip(self.step_levels, self.step_allocations)):
            masks = masks_at(self.rankings, level if allocation is None else allocation)
            self.masked.set_masks(masks)
            if self.private:
                self.private.select(self.step_targets[position])
            if self.freeze_unused:
                used = {name: mask | used[name] if name in used else mask for name, mask in masks.items()}
            loss = loss_fn(teacher_logits=teacher, last=position == passes - 1)
            if self.inplace_distillation and teacher is None:
                teacher = loss_fn.last_logits  # the densest sub-network's output, detached
            loss_fn.backward(loss, passes)
            value = loss_fn.mean_over_ranks(float(loss.detach()))  # alike on every rank: levels drawn alike
            if not math.isfinite(value):
                total = math.nan
                continue
            self.level_weights.observe(
                level, value if self.level_loss == UTTERANCE_LOSS else loss_fn.mean_over_ranks(loss_fn.last_frame_loss)
            )
            total += value
            extra[f"{PASS_LEVEL}{position + 1}"], extra[f"{PASS_LOSS}{position + 1}"] = level, value
            extra[f"{PASS_LAYERWISE}{position + 1}"] = float(allocation is not None)
        if not math.isfinite(total):
            return StepResult(total, passes)
        extra.update(self.churn)
        if self.freeze_unused:
            self._hold_unused(used)
        if self.private:
            self.private.hold_untrained(self.step_targets)
        return StepResult(total / passes, passes, extra)

    def _hold_unused(self, used: Mapping[str, torch.Tensor]) -> None:
        """Remember the weights no pass of this step kept, to put them back after the optimizer step."""
        self.held = {}
        for name, kept in used.items():
            unused = ~kept.to(original_weight(self.model, name).device)
            self.held[name] = (unused, original_weight(self.model, name).detach()[unused].clone())

    def after_step(self) -> None:
        with torch.no_grad():
            for name, (unused, values) in self.held.items():
                original_weight(self.model, name)[unused] = values
        self.held = {}
        if self.private:
            self.private.restore_untrained()

    def log_columns(self) -> list[str]:
        """The level trained and its loss, per sub-network pass of the step, in the order trained: the
        sampler's (uniform: the one level; sandwich: highest, lowest, then the random ones; fixed_set:
        highest to lowest), or densest first under in-place distillation. During warm-up a level is the
        sampled one capped by the growing highest level. With per-layer passes, whether the pass trained
        a per-layer vector at that level's size. Then, per level, the churn of a re-ranking step."""
        passes = range(1, self.sampler.passes_per_step() + 1)
        kinds = (PASS_LEVEL, PASS_LOSS, *((PASS_LAYERWISE,) if self.layerwise.rate > 0 else ()))
        churn = [f"{CHURN}{level:g}" for level in self.sampler.levels] if self.sampler.level_space == "discrete" else []
        return [f"{kind}{i}" for i in passes for kind in kinds] + churn

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "level_weights": self.level_weights.state_dict(),
            "rankings": {name: ranking.state_dict() for name, ranking in self.rankings.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.level_weights.load_state_dict(state["level_weights"])
        self.rankings = {name: LayerRanking.from_state_dict(ranking) for name, ranking in state["rankings"].items()}

    def model_state_dict(self) -> dict[str, torch.Tensor]:
        return self.masked.original_state_dict()

    def load_model_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.masked.load_original_state_dict(state)

    def final_model(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The supernet is its unmasked shared weights, and each level's private copies under
        `private/<level>/<name>` (omni.sparsity.private); extraction cuts sub-networks from it."""
        state = {k: v.detach().cpu() for k, v in self.masked.original_state_dict().items() if not is_copy(k)}
        return {**state, **(self.private.per_level() if self.private else {})}, {}

    def final_rankings(self) -> dict[str, RankingState]:
        """The rankings the last step's sub-networks were cut from (extraction cuts the same)."""
        return {name: ranking.state_dict() for name, ranking in self.rankings.items()}
