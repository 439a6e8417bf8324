"""Per-layer sparsity vectors the supernet trains, so that the sub-networks the search picks
(per-layer mixes of `search.levels`) are ones the shared weights have seen.

A vector is drawn at the size of a uniform level: each layer draws a level from the choices,
then layers, in random order, move their pruned-unit count (within the choices' range) until the
total pruned units equal the uniform model's exactly. Most layers stay on the choices' grid; the
last one or two moved land between grid points, which the search's grid neighbours share weights
with anyway (masks are nested).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from omni.sparsity.masks import LayerRanking, allocation_units, units_to_prune


def allocation_at_size(
    rankings: Mapping[str, LayerRanking], level: float, choices: Sequence[float], generator: torch.Generator
) -> dict[str, float]:
    """A per-layer sparsity vector pruning exactly as many units as uniform `level` does.

    `level` must lie within [min(choices), max(choices)] (else no vector of the choices fits)."""
    low, high = min(choices), max(choices)
    if not low <= level <= high:
        raise ValueError(f"level {level} lies outside the per-layer choices' range [{low}, {high}]")
    members = allocation_units(rankings)  # a structured group's weights take one level together
    names = list(members)
    units = [rankings[group[0]].n_units for group in members.values()]
    goal = sum(units_to_prune(level, count) for count in units)
    drawn = torch.randint(len(choices), (len(names),), generator=generator).tolist()
    pruned = [units_to_prune(choices[index], count) for index, count in zip(drawn, units)]
    gap = goal - sum(pruned)
    for layer in torch.randperm(len(names), generator=generator).tolist():
        if gap == 0:
            break
        floor, ceiling = units_to_prune(low, units[layer]), units_to_prune(high, units[layer])
        moved = min(max(pruned[layer] + gap, floor), ceiling)
        gap -= moved - pruned[layer]
        pruned[layer] = moved
    return {member: count / total for name, count, total in zip(names, pruned, units) for member in members[name]}


@dataclass(frozen=True)
class LayerwiseSampling:
    """After warm-up, each sub-network pass trains, with probability `rate`, a per-layer vector of
    `choices` at its sampled level's size instead of the uniform level (omni.layerwise_rate)."""

    rate: float
    choices: tuple[float, ...]
    after_step: int  # the warm-up's end: before it, levels are capped below the choices' range

    def draw(
        self, step: int, level: float, rankings: Mapping[str, LayerRanking], generator: torch.Generator
    ) -> dict[str, float] | None:
        """The pass's per-layer vector, or None for the uniform level. Draws nothing when the rate is 0,
        so a study without per-layer passes keeps its random stream."""
        if self.rate <= 0 or step < self.after_step:
            return None
        if float(torch.rand((), generator=generator)) >= self.rate:
            return None
        return allocation_at_size(rankings, level, self.choices, generator)
