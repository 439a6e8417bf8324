"""Arm names and the kind of model each stands for, read from the name alone.

An arm is a path level (`models/<arm>/...`) and a table row: `dense`, `control`, the pruning arms
`individual` and `omni` with their variants (`individual-<x>`, `omni-<x>`, config `variants`), and
`<omni arm>-searched`, the search's per-layer models of that arm's supernet.
"""

from __future__ import annotations

SEARCHED_SUFFIX = "-searched"
PRUNING_KINDS = ("individual", "omni")
KINDS = ("dense", "control", *PRUNING_KINDS, "searched")  # also the order of arms in tables and figures


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
