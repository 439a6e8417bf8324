"""Fine-tune-free extraction: cut a sub-network out of the trained supernet.

Only masking happens here (no optimizer, no gradient): kept weights are the supernet's,
bit for bit; the rest are zero. An allocation is one sparsity for every layer or a per-layer
vector found by the search.

The masks come from the rankings the supernet's LAST step trained with, stored in its artefact,
not from a new ranking of the final weights: the supernet re-ranks only every
`omni.mask_update_every` steps, and the weights move after the last re-ranking, so a fresh
ranking would cut sub-networks that were never trained as such.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from omni.asr.model import ModelArtefact
from omni.sparsity.masks import LayerRanking, masks_at
from omni.sparsity.private import level_state


def trained_rankings(supernet: ModelArtefact) -> dict[str, LayerRanking]:
    """The per-layer rankings of the supernet's last training step (what its sub-networks were)."""
    stored = supernet.get("rankings")
    if not stored:
        raise ValueError("the artefact holds no rankings: extraction needs a supernet written by the supernet job")
    return {name: LayerRanking.from_state_dict(state) for name, state in stored.items()}


def extract_subnetwork(
    supernet: ModelArtefact, allocation: float | Mapping[str, float]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(state dict with masks applied, masks) of one sub-network of a supernet artefact; a uniform level
    of a supernet with private per-level parameters takes that level's copies."""
    masks = masks_at(trained_rankings(supernet), allocation)
    state = level_state(supernet["state_dict"], None if isinstance(allocation, Mapping) else float(allocation))
    with torch.no_grad():
        for name, mask in masks.items():
            state[name] = state[name] * mask.to(state[name].dtype)
    return state, masks
