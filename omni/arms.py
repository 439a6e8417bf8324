"""Arm names and model tags: the kind of model each stands for, read from the name alone.

An arm is a path level (`models/<arm>/...`) and a table row: `dense`, `control`, the pruning arms
`individual` and `omni` with their variants (`individual-<x>`, `omni-<x>`, config `variants`), and
`<omni arm>-searched`, the search's per-layer models of that arm's supernet.

A tag names one model of an arm and seed (the path level below the seed): `dense` (a dense model),
`continued` (the control), `s<level>` (a uniform sparsity level: the individual job, or the sub-network
cut from a supernet) and `b<level>` (a searched model within the size of the uniform model at <level>).
"""

from __future__ import annotations

SEARCHED_SUFFIX = "-searched"
PRUNING_KINDS = ("individual", "omni")
KINDS = ("dense", "control", *PRUNING_KINDS, "searched")  # also the order of arms in tables and figures


DENSE_TAG = "dense"
CONTROL_TAG = "continued"
LEVEL_PREFIX = "s"
BUDGET_PREFIX = "b"
TAG_PATTERN = rf"{DENSE_TAG}|{CONTROL_TAG}|{LEVEL_PREFIX}0\.[0-9]+|{BUDGET_PREFIX}0\.[0-9]+"  # a wildcard's


def level_text(level: float | str) -> str:
    """`0.7` -> `0.7`: how a level appears in paths and tags (no trailing zeros); text is kept as written."""
    return level if isinstance(level, str) else f"{level:g}"


def level_tag(level: float | str) -> str:
    """`s0.7`: the model at uniform sparsity `level`."""
    return f"{LEVEL_PREFIX}{level_text(level)}"


def budget_tag(level: float | str) -> str:
    """`b0.7`: the searched model within the size of the uniform model at `level`."""
    return f"{BUDGET_PREFIX}{level_text(level)}"


def is_level_tag(tag: str) -> bool:
    return tag.startswith(LEVEL_PREFIX)


def is_budget_tag(tag: str) -> bool:
    return tag.startswith(BUDGET_PREFIX)


def tag_level(tag: str) -> str:
    """The level a level or budget tag names, as written (`s0.7` -> `0.7`)."""
    if not (is_level_tag(tag) or is_budget_tag(tag)):
        raise ValueError(f"tag {tag!r} names no sparsity level")
    return tag[1:]


def arm_kind(arm: str) -> str | None:
    """`individual-kd` -> `individual`, `omni-kd-searched` -> `searched`, `dense` -> `dense`; None for
    a name that is no arm."""
    if arm in ("dense", "control"):
        return arm
    kind = arm.split("-", 1)[0]
    if kind not in PRUNING_KINDS:
        return None
    return "searched" if kind == "omni" and arm.endswith(SEARCHED_SUFFIX) else kind


def is_default_arm(arm: str) -> bool:
    """The study's own arm of its kind (`individual`, `omni`, `omni-searched`), not a variant."""
    return arm in (*KINDS, f"omni{SEARCHED_SUFFIX}")


def arm_order(arm: str) -> tuple[int, str]:
    """Table order: dense, control, the individual arms, the omni arms, the searched arms; within a
    kind the study's own arm first, then its variants by name."""
    kind = arm_kind(arm)
    return (KINDS.index(kind) if kind else len(KINDS)), "" if is_default_arm(arm) else arm
