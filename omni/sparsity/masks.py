"""The sparsity core: which weights are prunable, one magnitude ranking per layer, masks, schedules.

Omni-sparsity needs every sparsity level of a layer to come from the SAME ranking, so that the
mask at a higher sparsity is a subset of the mask at a lower one (nested sub-networks share
weights). A `LayerRanking` therefore sorts a layer once and answers any level in O(numel) by
comparing a stored rank tensor with a threshold; nothing is re-sorted per level.

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

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from omni.config import ConfigError

UNSTRUCTURED = "unstructured"
BLOCK = "block"
GRANULARITIES = (UNSTRUCTURED, BLOCK)
ELEMENT_UNIT = (1, 1)

PREDICTOR_PREFIX = "predictor."
PREDICTOR_EMBEDDING = "predictor.embedding.weight"
JOINER_WEIGHTS = ("joiner.linear.weight",)
IO_LINEAR_WEIGHTS = ("transcriber.input_linear.weight", "transcriber.output_linear.weight")
MATRIX_NDIM = 2

PARAMETRIZED_NAME = re.compile(r"(^|\.)parametrizations\.(\w+)\.original$")
RANK_DTYPE = torch.int32
# Non-negative float32 values order exactly like their int32 bit patterns, and torch sorts int32
# with a radix sort: about 15x faster than sorting the floats on CPU (262k scores: 6 ms vs 90 ms).
SCORE_DTYPE = torch.float32
SORT_KEY_DTYPE = torch.int32
# A unit pruned by an earlier mask scores below every surviving unit (magnitudes are >= 0; the
# one negative value is also below them all as a bit pattern).
PRUNED_SCORE = -1.0


# ----------------------------------------------------------------------------------------------
# Which weights are prunable
# ----------------------------------------------------------------------------------------------

def plain_name(name: str) -> str:
    """Map `a.parametrizations.weight.original` to `a.weight`, so names are the same whether
    or not masks are installed (configs and artefacts speak plain torchaudio names)."""
    return PARAMETRIZED_NAME.sub(r"\1\2", name)


def prunable_parameter_names(model: nn.Module, sparsity_cfg: Mapping[str, Any]) -> list[str]:
    """The 2-D weights the config makes prunable, in model order (deterministic across runs)."""
    patterns = [re.compile(p) for p in sparsity_cfg["prunable"]]
    names = []
    for raw_name, param in model.named_parameters():
        name = plain_name(raw_name)
        if param.ndim == MATRIX_NDIM and _is_prunable(name, patterns, sparsity_cfg):
            names.append(name)
    if not names:
        raise ConfigError(
            f"config key 'sparsity.prunable': no 2-D parameter matches any of {sparsity_cfg['prunable']}"
        )
    return names


def _is_prunable(name: str, patterns: Sequence[re.Pattern[str]], sparsity_cfg: Mapping[str, Any]) -> bool:
    if any(p.search(name) for p in patterns):
        return True
    if sparsity_cfg["include_predictor"] and name.startswith(PREDICTOR_PREFIX) and name != PREDICTOR_EMBEDDING:
        return True
    if sparsity_cfg["include_joiner"] and name in JOINER_WEIGHTS:
        return True
    return bool(sparsity_cfg["include_io_linears"]) and name in IO_LINEAR_WEIGHTS


def original_weight(model: nn.Module, name: str) -> Tensor:
    """The unmasked tensor behind `name`, whether or not a mask parametrization is installed."""
    module_path, _, attr = name.rpartition(".")
    module = model.get_submodule(module_path)
    if parametrize.is_parametrized(module, attr):
        return module.parametrizations[attr].original
    return getattr(module, attr)


# ----------------------------------------------------------------------------------------------
# One ranking per layer, any level
# ----------------------------------------------------------------------------------------------

def unit_shape(granularity: str, block_shape: Sequence[int]) -> tuple[int, int]:
    """The pruning unit: one element for unstructured sparsity, `block_shape` for blocks."""
    if granularity == UNSTRUCTURED:
        return ELEMENT_UNIT
    if granularity == BLOCK:
        rows, cols = (int(b) for b in block_shape)
        return rows, cols
    raise ConfigError(f"config key 'sparsity.granularity': '{granularity}' is not one of {list(GRANULARITIES)}")


def unit_grid(shape: Sequence[int], unit: tuple[int, int], name: str = "<weight>") -> tuple[int, int]:
    """Units per row and column of a 2-D weight; a block that does not tile it is a config error."""
    if len(shape) != MATRIX_NDIM:
        raise ValueError(f"{name}: only 2-D weights can be ranked, got shape {tuple(shape)}")
    rows, cols = shape
    unit_rows, unit_cols = unit
    if rows % unit_rows or cols % unit_cols:
        raise ConfigError(
            f"config key 'sparsity.block_shape': block {list(unit)} does not tile {name} of shape {[rows, cols]}"
        )
    return rows // unit_rows, cols // unit_cols


def to_units(tensor: Tensor, unit: tuple[int, int]) -> Tensor:
    """View a [R, C] tensor as [R/br, C/bc, br, bc]: one entry per unit, units in row-major order."""
    grid_rows, grid_cols = unit_grid(tensor.shape, unit)
    return tensor.reshape(grid_rows, unit[0], grid_cols, unit[1]).permute(0, 2, 1, 3)


def expand_units(unit_mask: Tensor, unit: tuple[int, int]) -> Tensor:
    """Inverse of the unit view for a per-unit mask: every element takes its unit's value."""
    grid_rows, grid_cols = unit_mask.shape
    expanded = unit_mask[:, None, :, None].expand(grid_rows, unit[0], grid_cols, unit[1])
    return expanded.reshape(grid_rows * unit[0], grid_cols * unit[1])


def units_alive(mask: Tensor, unit: tuple[int, int]) -> Tensor:
    """[R/br, C/bc] flags: a unit is alive while any of its elements is kept."""
    return to_units(mask, unit).any(dim=3).any(dim=2)


def units_to_prune(sparsity: float, n_units: int) -> int:
    """round(s * n), the same rounding torch.nn.utils.prune uses, so results agree with it."""
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    return round(sparsity * n_units)


def unit_scores(weight: Tensor, unit: tuple[int, int], name: str = "<weight>") -> Tensor:
    """|w| per element or the L2 norm per block, in float32 (half-precision norms could overflow,
    and the sort keys are float32 bit patterns)."""
    unit_grid(weight.shape, unit, name)
    values = weight.detach().to(SCORE_DTYPE)
    if unit == ELEMENT_UNIT:
        return values.abs()
    return torch.linalg.vector_norm(to_units(values, unit), dim=(2, 3))


class LayerRanking:
    """One sort of a layer's units serving every sparsity level, which makes the masks nested.

    Units are ordered by ascending score with a stable sort, so equal scores are broken by
    position (lower index pruned first) and the same weights always give the same masks.
    """

    def __init__(self, weight: Tensor, granularity: str, block_shape: Sequence[int],
                 name: str = "<weight>", keep_within: Tensor | None = None) -> None:
        self.name = name
        self.shape = tuple(weight.shape)
        self.unit = unit_shape(granularity, block_shape)
        if keep_within is None:
            scores = unit_scores(weight, self.unit, name)
        else:
            scores = self._restricted(weight, keep_within)
        self.n_units = scores.numel()
        if self.n_units > torch.iinfo(RANK_DTYPE).max:
            raise ValueError(f"{name}: {self.n_units} units exceed the rank dtype {RANK_DTYPE}")
        order = torch.argsort(scores.flatten().view(SORT_KEY_DTYPE), stable=True)
        rank = torch.empty(self.n_units, dtype=RANK_DTYPE, device=scores.device)
        rank[order] = torch.arange(self.n_units, dtype=RANK_DTYPE, device=scores.device)
        self._rank = rank.view(scores.shape)

    def _restricted(self, weight: Tensor, keep_within: Tensor) -> Tensor:
        """Scores of w * mask with already-pruned units forced below all others, so re-ranking
        at a non-decreasing sparsity only ever removes more weights (never revives one)."""
        if tuple(keep_within.shape) != self.shape:
            raise ValueError(f"{self.name}: restricting mask shape {tuple(keep_within.shape)} != {self.shape}")
        keep = keep_within.to(device=weight.device, dtype=torch.bool)
        scores = unit_scores(weight.detach() * keep, self.unit, self.name)
        return scores.masked_fill(~units_alive(keep, self.unit), PRUNED_SCORE)

    def state_dict(self) -> dict[str, Any]:
        """The ranking itself, so a resumed supernet uses the masks it was using when killed."""
        return {"rank": self._rank.cpu(), "shape": list(self.shape), "unit": list(self.unit), "name": self.name}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "LayerRanking":
        ranking = cls.__new__(cls)
        ranking.name = state["name"]
        ranking.shape = tuple(state["shape"])
        ranking.unit = tuple(state["unit"])
        ranking._rank = state["rank"]
        ranking.n_units = ranking._rank.numel()
        return ranking

    def mask(self, sparsity: float) -> Tensor:
        """Boolean keep-mask of the weight's shape with round(sparsity * units) units pruned."""
        unit_keep = self._rank >= units_to_prune(sparsity, self.n_units)
        return expand_units(unit_keep, self.unit)


def rank_layers(model: nn.Module, names: Iterable[str], granularity: str, block_shape: Sequence[int],
                restrict_to: Mapping[str, Tensor] | None = None) -> dict[str, LayerRanking]:
    """Rank every named layer on its current (unmasked) weights, or on w * mask when
    `restrict_to` holds the current masks (gradual pruning: a growing sparsity stays nested)."""
    rankings = {}
    for name in names:
        if restrict_to is not None and name not in restrict_to:
            raise KeyError(f"rank_layers: restrict_to has no mask for {name}")
        keep_within = None if restrict_to is None else restrict_to[name]
        rankings[name] = LayerRanking(original_weight(model, name), granularity, block_shape,
                                      name=name, keep_within=keep_within)
    return rankings


def masks_at(rankings: Mapping[str, LayerRanking], allocation: float | Mapping[str, float]) -> dict[str, Tensor]:
    """Masks at one uniform sparsity or at a per-layer sparsity vector (the search's genome)."""
    if isinstance(allocation, Mapping):
        missing = sorted(set(rankings) - set(allocation))
        unknown = sorted(set(allocation) - set(rankings))
        if missing or unknown:
            raise KeyError(f"masks_at: per-layer allocation missing {missing}, unknown {unknown}")
        levels = {name: float(allocation[name]) for name in rankings}
    else:
        levels = dict.fromkeys(rankings, float(allocation))
    return {name: ranking.mask(levels[name]) for name, ranking in rankings.items()}


def all_kept_masks(model: nn.Module, names: Iterable[str]) -> dict[str, Tensor]:
    """Masks that keep every weight: where both pruning arms start from the dense model."""
    params = dict(model.named_parameters())
    return {name: torch.ones_like(params[name], dtype=torch.bool) for name in names}


def count_kept(masks: Mapping[str, Tensor]) -> tuple[int, int]:
    """(kept, total) over the prunable weights: the size measure the study reports as nnz."""
    kept = sum(int(m.count_nonzero()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    return kept, total


def sparsity_of(masks: Mapping[str, Tensor]) -> float:
    kept, total = count_kept(masks)
    if total == 0:
        raise ValueError("sparsity_of: no masks given")
    return 1.0 - kept / total


# ----------------------------------------------------------------------------------------------
# Gradual pruning schedule
# ----------------------------------------------------------------------------------------------

def cubic_sparsity(step: int, final: float, initial: float = 0.0, start_step: int = 0, *,
                   ramp_steps: int, update_every: int) -> float:
    """Zhu & Gupta (2017): s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3.

    t is quantised down to a multiple of the mask update interval dt (masks only change then),
    `ramp_steps` = n dt; s_i before t0 and s_f from t0 + n dt on.
    """
    if update_every < 1 or ramp_steps < 0:
        raise ValueError(f"cubic_sparsity: need update_every >= 1 and ramp_steps >= 0, "
                         f"got {update_every}, {ramp_steps}")
    elapsed = step - start_step
    if elapsed < 0:
        return initial
    if elapsed >= ramp_steps:
        return final
    quantised = (elapsed // update_every) * update_every
    return final + (initial - final) * (1.0 - quantised / ramp_steps) ** 3


# ----------------------------------------------------------------------------------------------
# Masks during training
# ----------------------------------------------------------------------------------------------

class _MaskMultiply(nn.Module):
    """weight -> weight * mask. The mask is a non-persistent buffer: it follows `model.to()`
    but never enters a state dict, so checkpoints stay plain weights."""

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

    def __init__(self, model: nn.Module, masks: Mapping[str, Tensor],
                 mask_dtype: torch.dtype | None = None) -> None:
        self.model = model
        self.names = list(masks)
        for name in self.names:
            self._install(name, masks[name], mask_dtype)

    def _install(self, name: str, mask: Tensor, mask_dtype: torch.dtype | None) -> None:
        module, attr = self._owner(name)
        if parametrize.is_parametrized(module, attr):
            raise ValueError(f"MaskedParameters: {name} already has a parametrization")
        weight = getattr(module, attr)
        _check_shape(name, mask, weight)
        buffer = mask.to(device=weight.device, dtype=mask_dtype or weight.dtype).clone()
        parametrize.register_parametrization(module, attr, _MaskMultiply(buffer))

    def _owner(self, name: str) -> tuple[nn.Module, str]:
        module_path, _, attr = name.rpartition(".")
        return self.model.get_submodule(module_path), attr

    def _mask_module(self, name: str) -> _MaskMultiply:
        module, attr = self._owner(name)
        return module.parametrizations[attr][0]

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
            if name in self.names:
                module_path, _, attr = name.rpartition(".")
                name = f"{module_path}.parametrizations.{attr}.original"
            renamed[name] = value
        self.model.load_state_dict(renamed)

    def remove(self, permanent: bool = True) -> None:
        """Drop the parametrizations: `permanent` leaves weight * mask as the plain parameter
        (same Parameter object, so an optimizer stays valid); otherwise the unmasked original."""
        for name in self.names:
            module, attr = self._owner(name)
            parametrize.remove_parametrizations(module, attr, leave_parametrized=permanent)
        self.names = []


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
        raise KeyError(f"set_masks: masks must name exactly the masked weights; "
                       f"missing {sorted(expected - given)}, unknown {sorted(given - expected)}")


def _check_shape(name: str, mask: Tensor, weight: Tensor) -> None:
    """Explicit, because copy_ and `*` would silently broadcast a wrong-shaped mask."""
    if mask.shape != weight.shape:
        raise ValueError(f"{name}: mask shape {tuple(mask.shape)} != weight shape {tuple(weight.shape)}")
