"""The sparsity core: which weights are prunable, one magnitude ranking per layer, masks, schedules.

Omni-sparsity needs every sparsity level of a layer to come from the SAME ranking, so that the
mask at a higher sparsity is a subset of the mask at a lower one (nested sub-networks share
weights). A `LayerRanking` therefore sorts a layer once and answers any level in O(numel) by
comparing a stored rank tensor with a threshold; nothing is re-sorted per level.
How masks are applied while training is omni.sparsity.masking.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import NotRequired, TypedDict, cast

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrize import ParametrizationList

from omni.config import ConfigError
from omni.sparsity.specs import MaskSpec

UNSTRUCTURED = "unstructured"
BLOCK = "block"
STRUCTURED = "structured"  # feed-forward neurons and attention heads (omni.sparsity.structured)
GRANULARITIES = (UNSTRUCTURED, BLOCK, STRUCTURED)
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


def prunable_parameter_names(model: nn.Module, masks: MaskSpec) -> list[str]:
    """The 2-D weights the config makes prunable, in model order (deterministic across runs)."""
    patterns = [re.compile(p) for p in masks.prunable]
    names = []
    for raw_name, param in model.named_parameters():
        name = plain_name(raw_name)
        if param.ndim == MATRIX_NDIM and _is_prunable(name, patterns, masks):
            names.append(name)
    if not names:
        raise ConfigError(f"config key 'sparsity.prunable': no 2-D parameter matches any of {list(masks.prunable)}")
    return names


def _is_prunable(name: str, patterns: Sequence[re.Pattern[str]], masks: MaskSpec) -> bool:
    if any(p.search(name) for p in patterns):
        return True
    if masks.include_predictor and name.startswith(PREDICTOR_PREFIX) and name != PREDICTOR_EMBEDDING:
        return True
    if masks.include_joiner and name in JOINER_WEIGHTS:
        return True
    return masks.include_io_linears and name in IO_LINEAR_WEIGHTS


def owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """(module, attribute) of a parameter name such as `transcriber.layer_norm.weight`."""
    module_path, _, attr = name.rpartition(".")
    return model.get_submodule(module_path), attr


def parametrizations(module: nn.Module, attr: str) -> ParametrizationList:
    """The parametrizations installed on `module.attr` (its original tensor and its chain); only for an
    attribute known to be parametrized."""
    # register_parametrization keeps them in the ModuleDict it adds as `module.parametrizations`, one
    # ParametrizationList per attribute; Module.__getattr__ types that ModuleDict as Tensor | Module.
    return cast(ParametrizationList, cast(nn.ModuleDict, module.parametrizations)[attr])


def original_weight(model: nn.Module, name: str) -> Tensor:
    """The unmasked tensor behind `name`, whether or not a mask parametrization is installed."""
    module, attr = owner(model, name)
    if parametrize.is_parametrized(module, attr):
        return parametrizations(module, attr).original
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
    if granularity == STRUCTURED:
        raise ValueError(
            "structured units differ per weight (rows of one, columns of another): "
            "omni.sparsity.structured gives each member's"
        )
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


class RankingState(TypedDict):
    """A LayerRanking as checkpoints and artefacts hold it; a structured ranking names its group."""

    rank: Tensor
    shape: list[int]
    unit: list[int]
    name: str
    units: NotRequired[int]
    group: NotRequired[str]


class LayerRanking:
    """One sort of a layer's units serving every sparsity level, which makes the masks nested.

    Units are ordered by ascending score with a stable sort, so equal scores are broken by
    position (lower index pruned first) and the same weights always give the same masks.
    """

    def __init__(
        self,
        weight: Tensor,
        granularity: str,
        block_shape: Sequence[int],
        name: str = "<weight>",
        keep_within: Tensor | None = None,
    ) -> None:
        self.name = name
        self.shape = tuple(weight.shape)
        self.unit = unit_shape(granularity, block_shape)
        if keep_within is None:
            scores = unit_scores(weight, self.unit, name)
        else:
            scores = self._restricted(weight, keep_within)
        self.n_units = scores.numel()
        self.group: str | None = None
        self._rank = ranks_of(scores.flatten()).view(scores.shape)

    @classmethod
    def within_levels(cls, weight: Tensor, previous: LayerRanking, sparsities: Sequence[float]) -> LayerRanking:
        """A re-ranking on the current weights under which no level revives a unit it had pruned.

        Each unit's bucket is how many of `sparsities` (the levels' sparsities under the `previous`
        ranking, i.e. the masks trained so far) kept it; units sort by bucket first, then by score. Cut
        at a sparsity >= its old one, every level's new mask is then a subset of its old mask, and the
        masks stay nested (one order serves every level): what the individual job's re-ranking inside
        its own mask does, for all levels at once."""
        scores = unit_scores(weight, previous.unit, previous.name).flatten()
        rank = ranks_of(scores, levels_kept(previous._rank.flatten().to(scores.device), sparsities, previous.n_units))
        return cls.of_ranks(
            previous.name, previous.shape, previous.unit, rank.view(previous._rank.shape), previous.n_units
        )

    @classmethod
    def of_ranks(
        cls,
        name: str,
        shape: Sequence[int],
        unit: tuple[int, int],
        rank: Tensor,
        n_units: int,
        group: str | None = None,
    ) -> LayerRanking:
        """A ranking from given ranks per unit of the weight's grid, cut against `n_units`: a structured
        member's grid blocks carry its group's unit ranks (the key and value blocks of a head share one),
        and a level prunes that fraction of the group's units."""
        ranking = cls.__new__(cls)
        ranking.name, ranking.shape, ranking.unit = name, tuple(shape), unit
        ranking._rank, ranking.n_units, ranking.group = rank, n_units, group
        return ranking

    def _restricted(self, weight: Tensor, keep_within: Tensor) -> Tensor:
        """Scores of w * mask with already-pruned units forced below all others, so re-ranking
        at a non-decreasing sparsity only ever removes more weights (never revives one)."""
        if tuple(keep_within.shape) != self.shape:
            raise ValueError(f"{self.name}: restricting mask shape {tuple(keep_within.shape)} != {self.shape}")
        keep = keep_within.to(device=weight.device, dtype=torch.bool)
        scores = unit_scores(weight.detach() * keep, self.unit, self.name)
        return scores.masked_fill(~units_alive(keep, self.unit), PRUNED_SCORE)

    @property
    def unit_ranks(self) -> Tensor:
        """Each unit's place in the order, over the weight's unit grid."""
        return self._rank

    def state_dict(self) -> RankingState:
        """The ranking itself, so a resumed supernet uses the masks it was using when killed."""
        state: RankingState = {
            "rank": self._rank.cpu(),
            "shape": list(self.shape),
            "unit": list(self.unit),
            "name": self.name,
        }
        if self.group is not None:
            state["units"], state["group"] = self.n_units, self.group
        return state

    @classmethod
    def from_state_dict(cls, state: RankingState) -> LayerRanking:
        rank = state["rank"]
        rows, columns = state["unit"]
        return cls.of_ranks(
            state["name"],
            state["shape"],
            (rows, columns),
            rank,
            int(state.get("units", rank.numel())),
            state.get("group"),
        )

    def mask(self, sparsity: float) -> Tensor:
        """Boolean keep-mask of the weight's shape with round(sparsity * units) units pruned."""
        unit_keep = self._rank >= units_to_prune(sparsity, self.n_units)
        return expand_units(unit_keep, self.unit)


def ranks_of(scores: Tensor, buckets: Tensor | None = None) -> Tensor:
    """Each unit's place in ascending order of 1-D `scores` (ties by position), or of (`buckets`, score)."""
    count = scores.numel()
    if count > torch.iinfo(RANK_DTYPE).max:
        raise ValueError(f"{count} units exceed the rank dtype {RANK_DTYPE}")
    order = torch.argsort(scores.view(SORT_KEY_DTYPE), stable=True)
    if buckets is not None:
        order = order[torch.argsort(buckets[order], stable=True)]
    rank = torch.empty(count, dtype=RANK_DTYPE, device=scores.device)
    rank[order] = torch.arange(count, dtype=RANK_DTYPE, device=scores.device)
    return rank


def levels_kept(rank: Tensor, sparsities: Sequence[float], n_units: int) -> Tensor:
    """Per unit, how many of `sparsities` keep it under `rank`: the bucket a re-ranking sorts by first,
    so that no level revives a unit it pruned (LayerRanking.within_levels)."""
    buckets = torch.zeros_like(rank)
    for sparsity in sparsities:
        buckets += (rank >= units_to_prune(sparsity, n_units)).to(rank.dtype)
    return buckets


def rank_layers(
    model: nn.Module,
    names: Iterable[str],
    granularity: str,
    block_shape: Sequence[int],
    restrict_to: Mapping[str, Tensor] | None = None,
) -> dict[str, LayerRanking]:
    """Rank every named layer on its current (unmasked) weights, or on w * mask when
    `restrict_to` holds the current masks (gradual pruning: a growing sparsity stays nested)."""
    names = list(names)
    if restrict_to is not None and (missing := [name for name in names if name not in restrict_to]):
        raise KeyError(f"rank_layers: restrict_to has no mask for {missing}")
    if granularity == STRUCTURED:
        from omni.sparsity.structured import rank_groups  # here: structured.py builds on this module

        return rank_groups(model, names, restrict_to=restrict_to)
    rankings = {}
    for name in names:
        keep_within = None if restrict_to is None else restrict_to[name]
        rankings[name] = LayerRanking(
            original_weight(model, name), granularity, block_shape, name=name, keep_within=keep_within
        )
    return rankings


def rerank_within_levels(
    model: nn.Module, previous: Mapping[str, LayerRanking], sparsities: Sequence[float]
) -> dict[str, LayerRanking]:
    """Every layer of `previous` re-ranked on its current weights without reviving a unit that any
    of `sparsities` pruned under the previous ranking (LayerRanking.within_levels)."""
    if any(ranking.group is not None for ranking in previous.values()):
        from omni.sparsity.structured import rank_groups  # here: structured.py builds on this module

        return rank_groups(model, list(previous), previous=previous, sparsities=sparsities)
    return {
        name: LayerRanking.within_levels(original_weight(model, name), ranking, sparsities)
        for name, ranking in previous.items()
    }


def allocation_units(rankings: Mapping[str, LayerRanking]) -> dict[str, list[str]]:
    """What a per-layer sparsity vector assigns levels to: each weight alone, or a structured group's
    members together (one level for all the weights a unit spans), in model order."""
    units: dict[str, list[str]] = {}
    for name, ranking in rankings.items():
        units.setdefault(ranking.group or name, []).append(name)
    return units


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


def cubic_sparsity(
    step: int, final: float, initial: float = 0.0, start_step: int = 0, *, ramp_steps: int, update_every: int
) -> float:
    """Zhu & Gupta (2017): s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3.

    t is quantised down to a multiple of the mask update interval dt (masks only change then),
    `ramp_steps` = n dt; s_i before t0 and s_f from t0 + n dt on.
    """
    if update_every < 1 or ramp_steps < 0:
        raise ValueError(
            f"cubic_sparsity: need update_every >= 1 and ramp_steps >= 0, got {update_every}, {ramp_steps}"
        )
    elapsed = step - start_step
    if elapsed < 0:
        return initial
    if elapsed >= ramp_steps:
        return final
    quantised = (elapsed // update_every) * update_every
    return final + (initial - final) * (1.0 - quantised / ramp_steps) ** 3


def apply_masks_(model: nn.Module, masks: Mapping[str, Tensor]) -> None:
    """Zero `model`'s pruned weights in place (masks by parameter name): a masked model as plain tensors."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name in masks:
                parameter.mul_(masks[name].to(parameter.dtype))
