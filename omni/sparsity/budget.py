"""The supernet job's compute as arithmetic on its config section: passes per step, steps, warm-up.

Plain Python, no torch: the workflow checks the equal-budget rule and the warm-up at parse time,
and `snakemake -n` should not pay for importing torch.
"""
from __future__ import annotations

from typing import Any, Mapping


def passes_per_step(sampling: str, levels: int, random_levels: int) -> int:
    """Sub-network forward/backward passes one step costs: uniform 1, fixed_set every level,
    sandwich highest + lowest + the random ones."""
    if sampling == "uniform":
        return 1
    if sampling == "fixed_set":
        return levels
    return 2 + random_levels


def supernet_steps(budget: int, passes: int) -> int:
    """Steps of the supernet job: its budget of sub-network passes over the passes one step costs."""
    return max(1, budget // passes)


def warmup_steps(warmup_fraction: float, steps: int) -> int:
    """Steps over which the highest level grows on the cubic schedule."""
    return int(round(warmup_fraction * steps))


def planned_steps(supernet: Mapping[str, Any]) -> tuple[int, int]:
    """(steps, warm-up steps) of a supernet job from its rule section (omni.job_params.supernet)."""
    passes = passes_per_step(supernet["sampling"], len(supernet["levels"]), supernet["random_levels"])
    steps = supernet_steps(supernet["budget"], passes)
    return steps, warmup_steps(supernet["warmup_fraction"], steps)
