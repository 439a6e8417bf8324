"""Masks during training: how a model trains with some of its weights pruned.

Two ways to mask during training, for two needs:
- `MaskedParameters` (supernet): a `torch.nn.utils.parametrize` parametrization, the forward
  sees `weight * mask`, so pruned weights are zero in the output AND receive a zero gradient,
  while the unmasked original stays alive: a weight pruned in one sub-network is a live weight
  of a denser one. The supernet swaps masks every step with `set_masks` (a buffer copy).
- `ZeroedWeightMasks` (one sparse model, the individual arm): pruned weights are stored as
  exact zeros and their gradients are masked by a hook, so the forward runs the plain module
  with no multiply at all; `enforce()` after each optimizer step re-zeroes what AdamW's
  momentum moved. The pruned values are gone, which suits a kept set that only shrinks.
Both train the same effective weights: kept weights get identical updates either way.

Optimizer contract: install `MaskedParameters` first, then `model.to(device)`, then create the
optimizer from `model.parameters()`. The parametrized weights then appear as
`<module>.parametrizations.weight.original`; they are the very Parameter objects the model had
before installing (parametrize re-registers them, it does not copy), so an optimizer created
earlier keeps working too, but its `state_dict()` indexes parameters by position and the
position of a parametrized weight moves. Create the optimizer after installing, in every run,
so a saved optimizer state always lines up with the model it is loaded into. On CPU prefer
`AdamW(..., fused=True)`: the default for-loop AdamW is slower on masked models because torch's
CPU sqrt is ~5x slower on the exact zeros pruned weights leave in `exp_avg_sq` (1M params:
18 ms dense vs 24 ms 80 %-masked per step; fused: 2.3 ms for both).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import cast

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from omni.sparsity.masks import owner, parametrizations, plain_name


class _MaskMultiply(nn.Module):
    """weight -> weight * mask. The mask is a non-persistent buffer: it follows `model.to()`
    but never enters a state dict, so checkpoints stay plain weights."""

    mask: Tensor  # a buffer (register_buffer below): declared, else Module.__getattr__ types it Tensor | Module

    def __init__(self, mask: Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, weight: Tensor) -> Tensor:
        return weight * self.mask


class MaskedParameters:
    """Hard masks on named weights through `torch.nn.utils.parametrize` (see the module docstring
    for how to create the optimizer).

    By default the mask is stored in the weight's dtype: `weight * mask` is then one plain
    multiply with no type promotion in forward or backward. `mask_dtype=torch.bool` stores a
    quarter of the bytes (fp32) at some speed cost; benchmarks/masking.py measures both.
    """

    def __init__(self, model: nn.Module, masks: Mapping[str, Tensor], mask_dtype: torch.dtype | None = None) -> None:
        self.model = model
        self.names = list(masks)
        for name in self.names:
            self._install(name, masks[name], mask_dtype)

    def _install(self, name: str, mask: Tensor, mask_dtype: torch.dtype | None) -> None:
        module, attr = owner(self.model, name)
        if parametrize.is_parametrized(module, attr):
            raise ValueError(f"MaskedParameters: {name} already has a parametrization")
        weight = getattr(module, attr)
        _check_shape(name, mask, weight)
        buffer = mask.to(device=weight.device, dtype=mask_dtype or weight.dtype).clone()
        parametrize.register_parametrization(module, attr, _MaskMultiply(buffer))

    def _mask_module(self, name: str) -> _MaskMultiply:
        module, attr = owner(self.model, name)
        # _install registered exactly one parametrization on the weight: a _MaskMultiply
        return cast(_MaskMultiply, parametrizations(module, attr)[0])

    def set_masks(self, masks: Mapping[str, Tensor]) -> None:
        """Copy new masks into the installed buffers (no re-registration: cheap every step)."""
        _check_names(masks, self.names)
        with torch.no_grad():
            for name in self.names:
                buffer = self._mask_module(name).mask
                _check_shape(name, masks[name], buffer)
                buffer.copy_(masks[name])

    def masks(self) -> dict[str, Tensor]:
        """Copies of the current masks as bool tensors (what artefacts store); never the live
        buffers, which the next set_masks overwrites."""
        return {name: self._mask_module(name).mask.to(torch.bool, copy=True) for name in self.names}

    def original_state_dict(self) -> dict[str, Tensor]:
        """Original parameter names, UNMASKED weights: resumes supernet training exactly (pruned
        weights of one sub-network are live weights of a denser one). Save masks separately."""
        return {plain_name(key): value for key, value in self.model.state_dict().items()}

    def load_original_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Load what `original_state_dict` produced (strict), into the installed model."""
        renamed = {}
        for name, value in state.items():
            module_path, _, attr = name.rpartition(".")
            if name in self.names or _parametrized(self.model, module_path, attr):
                name = f"{module_path}.parametrizations.{attr}.original"
            renamed[name] = value
        self.model.load_state_dict(renamed)

    def remove(self, permanent: bool = True) -> None:
        """Drop the parametrizations: `permanent` leaves weight * mask as the plain parameter
        (same Parameter object, so an optimizer stays valid); otherwise the unmasked original."""
        for name in self.names:
            module, attr = owner(self.model, name)
            parametrize.remove_parametrizations(module, attr, leave_parametrized=permanent)
        self.names = []


def _parametrized(model: nn.Module, module_path: str, attr: str) -> bool:
    """Whether `module_path.attr` is a parametrized tensor (a mask's, or a private per-level one's)."""
    try:
        return parametrize.is_parametrized(model.get_submodule(module_path), attr)
    except AttributeError:
        return False


class ZeroedWeightMasks:
    """Fixed-support masks for training ONE sparse model: cheaper than a parametrization or
    `torch.nn.utils.prune` (both multiply in every forward; this multiplies only the gradient,
    once per backward, and the weights once per optimizer step). See the module docstring."""

    def __init__(self, model: nn.Module, masks: Mapping[str, Tensor]) -> None:
        params = dict(model.named_parameters())
        unknown = sorted(set(masks) - set(params))
        if unknown:
            raise KeyError(f"ZeroedWeightMasks: no parameters named {unknown}")
        self.params = {name: params[name] for name in masks}
        self.buffers: dict[str, Tensor] = {}
        for name, param in self.params.items():
            _check_shape(name, masks[name], param)
            self.buffers[name] = masks[name].to(device=param.device, dtype=param.dtype).clone()
            param.register_hook(self.buffers[name].mul)
        self.enforce()

    def set_masks(self, masks: Mapping[str, Tensor]) -> None:
        _check_names(masks, self.params)
        with torch.no_grad():
            for name, mask in masks.items():
                _check_shape(name, mask, self.buffers[name])
                self.buffers[name].copy_(mask)
        self.enforce()

    @torch.no_grad()
    def enforce(self) -> None:
        """Zero the pruned weights (call after every optimizer step)."""
        for name, param in self.params.items():
            param.mul_(self.buffers[name])

    def masks(self) -> dict[str, Tensor]:
        return {name: buffer.to(torch.bool, copy=True) for name, buffer in self.buffers.items()}


def _check_names(masks: Mapping[str, Tensor], masked: Iterable[str]) -> None:
    """set_masks replaces every mask at once: a missing or extra name is a caller's bug."""
    expected, given = set(masked), set(masks)
    if given != expected:
        raise KeyError(
            f"set_masks: masks must name exactly the masked weights; "
            f"missing {sorted(expected - given)}, unknown {sorted(given - expected)}"
        )


def _check_shape(name: str, mask: Tensor, weight: Tensor) -> None:
    """Explicit, because copy_ and `*` would silently broadcast a wrong-shaped mask."""
    if mask.shape != weight.shape:
        raise ValueError(f"{name}: mask shape {tuple(mask.shape)} != weight shape {tuple(weight.shape)}")
