"""Fine-tune-free extraction: cut a sub-network out of the trained supernet.

Only masking happens here (no optimizer, no gradient): kept weights are the supernet's,
bit for bit; the rest are zero. An allocation is one sparsity for every layer or a per-layer
vector found by the search.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from omni.asr.model import build_model
from omni.sparsity.masks import masks_at, prunable_parameter_names, rank_layers


def extract_subnetwork(supernet: Mapping[str, Any], sparsity_cfg: dict[str, Any],
                       allocation: float | Mapping[str, float]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(state dict with masks applied, masks) of one sub-network of a supernet artefact."""
    model = build_model(supernet["model_config"])
    model.load_state_dict(supernet["state_dict"])
    names = prunable_parameter_names(model, sparsity_cfg)
    rankings = rank_layers(model, names, sparsity_cfg["granularity"], sparsity_cfg["block_shape"])
    masks = masks_at(rankings, allocation)
    state = {name: tensor.clone() for name, tensor in supernet["state_dict"].items()}
    with torch.no_grad():
        for name, mask in masks.items():
            state[name] = state[name] * mask.to(state[name].dtype)
    return state, masks
