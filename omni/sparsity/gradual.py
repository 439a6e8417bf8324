"""The individual arm's gradient strategy: gradual magnitude pruning to one target sparsity.

Masks follow Zhu & Gupta's cubic schedule and are re-ranked on the surviving weights every
update, so the sparsity only grows and a pruned weight never comes back: which is why this arm
can store pruned weights as zeros (`ZeroedWeightMasks`, no multiply in the forward pass).
"""

from __future__ import annotations

from typing import Any

import torch

from omni.asr.trainer import GradientStrategy, LossFn, StepResult
from omni.sparsity.masking import ZeroedWeightMasks
from omni.sparsity.masks import (
    all_kept_masks,
    cubic_sparsity,
    masks_at,
    prunable_parameter_names,
    rank_layers,
)
from omni.sparsity.specs import MaskSpec, PruningRamp


class GradualPruning(GradientStrategy):
    def __init__(
        self,
        model: torch.nn.Module,
        masks: MaskSpec,
        target: float,
        steps: int,
        ramp: PruningRamp,
    ) -> None:
        """A job of `steps` steps pruning to `target` on `ramp`."""
        super().__init__(model)
        self.names = prunable_parameter_names(model, masks)
        self.granularity = masks.granularity
        self.block_shape = masks.block_shape
        self.masked = ZeroedWeightMasks(model, all_kept_masks(model, self.names))
        self.target = target
        self.ramp_steps = ramp.steps(steps)
        self.update_every = ramp.mask_update_every
        self.current = 0.0

    def scheduled_sparsity(self, step: int) -> float:
        return cubic_sparsity(step, final=self.target, ramp_steps=self.ramp_steps, update_every=self.update_every)

    def prepare(self, step: int) -> None:
        sparsity = self.scheduled_sparsity(step)
        if sparsity != self.current:
            rankings = rank_layers(
                self.model, self.names, self.granularity, self.block_shape, restrict_to=self.masked.masks()
            )
            self.masked.set_masks(masks_at(rankings, sparsity))
            self.current = sparsity

    def accumulate(self, step: int, loss_fn: LossFn) -> StepResult:
        loss = loss_fn()
        loss_fn.backward(loss)
        return StepResult(float(loss.detach()), fields={"sparsity": self.current})

    def after_step(self) -> None:
        self.masked.enforce()

    def log_columns(self) -> list[str]:
        return ["sparsity"]

    def state_dict(self) -> dict[str, Any]:
        return {"masks": {k: v.cpu() for k, v in self.masked.masks().items()}, "current": self.current}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.masked.set_masks(state["masks"])
        self.current = float(state["current"])

    def final_model(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        return (
            {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            {k: v.cpu() for k, v in self.masked.masks().items()},
        )
