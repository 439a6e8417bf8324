"""The pruning jobs' compute as arithmetic: passes per step, steps, warm-up and ramp lengths.

Plain Python, no torch: the workflow checks the equal-budget rule and the warm-up at parse time,
and `snakemake -n` should not pay for importing torch.
"""

from __future__ import annotations


def passes_per_step(sampling: str, levels: int, random_levels: int) -> int:
    """Sub-network forward/backward passes one step costs: uniform 1, fixed_set every level,
    sandwich highest + lowest + the random ones."""
    if sampling == "uniform":
        return 1
    if sampling == "fixed_set":
        return levels
    return 2 + random_levels


def step_cost(passes: int, teacher_forward_cost: float) -> float:
    """Training passes one step costs: its sub-network passes, plus a dense teacher's forward pass
    (0 without one) at its measured fraction of a pass (benchmarks/teacher_cost.py). An in-place
    teacher is the step's densest sub-network: already one of its passes."""
    return passes + teacher_forward_cost


def supernet_steps(budget: float, cost: float) -> int:
    """Steps of the supernet job: its budget of training passes over what one step costs (rounding
    guards against 800 x 1.27 / 1.27 landing a hair below 800)."""
    return max(1, int(round(budget / cost, 9)))


def warmup_steps(warmup_fraction: float, steps: int) -> int:
    """Steps over which the highest level grows on the cubic schedule."""
    return int(round(warmup_fraction * steps))


def ramp_steps(prune_fraction: float, steps: int) -> int:
    """Steps of an individual job's cubic pruning ramp (individual.prune_fraction of its steps); a
    supernet whose levels follow the individual ramps uses the same fraction of its own steps."""
    return max(1, int(round(prune_fraction * steps)))
