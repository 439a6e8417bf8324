"""Structured pruning units: feed-forward neurons and attention heads.

A unit spans several weight matrices, and removing it changes shapes, which every runtime turns into
speed (unstructured zeros it does not: no ONNX Runtime or XNNPACK kernel skips them):
- a feed-forward neuron j of an Emformer layer is row j of `pos_ff.1.weight` (the first linear,
  [ffn, D]) and column j of `pos_ff.4.weight` (the second, [D, ffn]);
- an attention head h is its `head_dim` rows of `attention.emb_to_query.weight` ([D, D]), its key rows
  and its value rows of `attention.emb_to_key_value.weight` ([2D, D]: keys first, then values), and its
  `head_dim` columns of `attention.out_proj.weight` ([D, D]).
Biases stay (they are not prunable weights): a pruned neuron's or head's output columns are zero, so
its bias reaches nothing, and the sliced model drops it.

A group is one such block of one layer (its neurons, or its heads); a level prunes that fraction of the
group's units, all of its members at once. A unit's score is the L2 norm of every weight it removes
(its slices of all members together): the norm block granularity uses for a block, so "magnitude" means
one thing at every granularity, and a unit whose weights are small in one matrix and large in another is
judged on all it carries.

This module knows the geometry (which rows and columns form which unit), the scores and the group
rankings built from them (omni.sparsity.masks.rank_layers calls `rank_groups` for this granularity): the
masks module's own LayerRanking, one per member, all of a group's members sharing the group's order, so
every level's masks agree across the members and stay nested.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn
from torchaudio.models.emformer import _EmformerAttention

from omni.config import ConfigError
from omni.sparsity.masks import (
    PRUNED_SCORE,
    RANK_DTYPE,
    LayerRanking,
    levels_kept,
    original_weight,
    ranks_of,
    to_units,
    unit_grid,
)

LAYER = r"^(?P<layer>transcriber\.transformer\.emformer_layers\.\d+)\."
HEAD_MEMBERS = ("attention.emb_to_query.weight", "attention.emb_to_key_value.weight", "attention.out_proj.weight")
NEURON_MEMBERS = ("pos_ff.1.weight", "pos_ff.4.weight")
MEMBER_NAME = re.compile(LAYER + r"(?P<member>" + "|".join(re.escape(m) for m in HEAD_MEMBERS + NEURON_MEMBERS) + r")$")
HEADS = "heads"
NEURONS = "neurons"


@dataclass(frozen=True)
class Member:
    """One weight of a group: its pruning unit (a block of rows or of columns) and, per block of its
    unit grid in row-major order, the group unit the block belongs to."""

    name: str
    unit: tuple[int, int]
    unit_of_block: tuple[int, ...]


@dataclass(frozen=True)
class UnitGroup:
    name: str  # the layer's prefix and the kind: `<layer>.heads` / `<layer>.neurons`
    kind: str  # HEADS | NEURONS
    units: int
    members: tuple[Member, ...]


def unit_groups(model: nn.Module, names: Iterable[str]) -> list[UnitGroup]:
    """The groups formed by the prunable weights `names`, in model order. Structured units need every
    member of a group prunable, and nothing else prunable (a unit is removed from all its weights)."""
    names = list(names)
    found: dict[str, dict[str, str]] = {}
    for name in names:
        match = MEMBER_NAME.match(name)
        if match is None:
            raise ConfigError(
                f"config key 'sparsity.prunable': {name} is not a feed-forward or attention weight of "
                "an Emformer layer; sparsity.granularity 'structured' prunes neurons and heads only"
            )
        found.setdefault(match["layer"], {})[match["member"]] = name
    groups = []
    for layer, members in found.items():
        for kind, wanted in ((HEADS, HEAD_MEMBERS), (NEURONS, NEURON_MEMBERS)):
            present = [m for m in wanted if m in members]
            if present and len(present) < len(wanted):
                missing = [f"{layer}.{m}" for m in wanted if m not in members]
                raise ConfigError(
                    f"config key 'sparsity.prunable': structured {kind} of {layer} need all of their "
                    f"weights prunable; missing {missing}"
                )
            if present:
                groups.append(_heads(model, layer) if kind == HEADS else _neurons(model, layer))
    return groups


def _heads(model: nn.Module, layer: str) -> UnitGroup:
    attention: _EmformerAttention = model.get_submodule(f"{layer}.attention")
    heads, width = int(attention.num_heads), int(attention.input_dim)
    head_dim = width // heads
    by_row_block = tuple(range(heads))
    return UnitGroup(
        f"{layer}.heads",
        HEADS,
        heads,
        (
            Member(f"{layer}.attention.emb_to_query.weight", (head_dim, width), by_row_block),
            Member(f"{layer}.attention.emb_to_key_value.weight", (head_dim, width), by_row_block + by_row_block),
            Member(f"{layer}.attention.out_proj.weight", (width, head_dim), by_row_block),
        ),
    )


def _neurons(model: nn.Module, layer: str) -> UnitGroup:
    # an Emformer layer's pos_ff is Sequential(LayerNorm, Linear, activation, Dropout, Linear, Dropout)
    first = cast(nn.Linear, model.get_submodule(f"{layer}.pos_ff.1"))
    neurons, width = int(first.out_features), int(first.in_features)
    by_block = tuple(range(neurons))
    return UnitGroup(
        f"{layer}.neurons",
        NEURONS,
        neurons,
        (
            Member(f"{layer}.pos_ff.1.weight", (1, width), by_block),
            Member(f"{layer}.pos_ff.4.weight", (width, 1), by_block),
        ),
    )


def block_view(weight: Tensor, unit: tuple[int, int]) -> Tensor:
    """[R, C] as [blocks, elements of a block], blocks row-major over the unit grid."""
    return to_units(weight, unit).reshape(-1, unit[0] * unit[1])


def group_scores(group: UnitGroup, weights: Mapping[str, Tensor]) -> Tensor:
    """Per unit of `group`, the L2 norm of all its weights over all members (float32)."""
    squares = torch.zeros(group.units, dtype=torch.float32)
    for member in group.members:
        blocks = block_view(weights[member.name].detach().to(device="cpu", dtype=torch.float32), member.unit)
        squares.index_add_(0, torch.tensor(member.unit_of_block), blocks.square().sum(dim=1))
    return squares.sqrt()


def units_alive(group: UnitGroup, masks: Mapping[str, Tensor]) -> Tensor:
    """Per unit of `group`, whether any member keeps any of its weights."""
    kept_blocks = torch.zeros(group.units, dtype=torch.int64)
    for member in group.members:
        kept = block_view(masks[member.name].to(device="cpu", dtype=torch.bool), member.unit).any(dim=1)
        kept_blocks.index_add_(0, torch.tensor(member.unit_of_block), kept.to(torch.int64))
    return kept_blocks > 0


def member_blocks(member: Member, per_unit: Tensor) -> Tensor:
    """A per-unit tensor of the group spread over `member`'s unit grid (row-major blocks)."""
    return per_unit[torch.tensor(member.unit_of_block)]


def rank_groups(
    model: nn.Module,
    names: list[str],
    restrict_to: Mapping[str, Tensor] | None = None,
    previous: Mapping[str, LayerRanking] | None = None,
    sparsities: Sequence[float] = (),
) -> dict[str, LayerRanking]:
    """Structured rankings: one order per group of `names`, on the units' current scores; pruned units
    (`restrict_to`) below every live one; or, given the `previous` rankings, sorted first by how many of
    `sparsities` kept each unit (within_levels, per group)."""
    rankings: dict[str, LayerRanking] = {}
    for group in unit_groups(model, names):
        scores = group_scores(group, {m.name: original_weight(model, m.name) for m in group.members})
        buckets = None
        if restrict_to is not None:
            scores = scores.masked_fill(~units_alive(group, restrict_to), PRUNED_SCORE)
        if previous is not None:
            first = group.members[0]
            old_rank = torch.empty(group.units, dtype=RANK_DTYPE)
            old_rank[torch.tensor(first.unit_of_block)] = previous[first.name].unit_ranks.flatten().cpu()
            buckets = levels_kept(old_rank, sparsities, group.units)
        rank = ranks_of(scores, buckets)
        for member in group.members:
            shape = tuple(original_weight(model, member.name).shape)
            grid = unit_grid(shape, member.unit, member.name)
            rankings[member.name] = LayerRanking.of_ranks(
                member.name, shape, member.unit, member_blocks(member, rank).view(grid), group.units, group.name
            )
    return {name: rankings[name] for name in names}
