"""A structured sub-network cut out as a smaller dense model: what any runtime runs faster.

The masked model and the sliced one compute the same function: a pruned neuron's column of the second
feed-forward linear and a pruned head's columns of the output projection are zero in the masked model,
so nothing the unit computes (its rows and biases included) reaches the output; the sliced model simply
does not compute it. A layer that keeps no unit of a kind keeps one anyway (the lowest-indexed) with its
output columns zero, so every layer stays a torchaudio layer; its kept-parameter count is the masked
model's, which is what the study reports.

The sliced model's model_config carries `layer_widths` (omni.asr.model.narrow_layers), so it saves,
exports and loads like any model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor
from torchaudio.models import RNNT
from torchaudio.models.emformer import _EmformerLayer

from omni.asr.model import LAYER_WIDTHS, LayerWidth, ModelConfig, narrow_layers
from omni.sparsity import structured


def kept_units(model: RNNT, masks: Mapping[str, Tensor]) -> dict[str, list[int]]:
    """Per structured group of the masked weights, the units any member keeps (ascending)."""
    return {
        group.name: torch.nonzero(structured.units_alive(group, masks)).flatten().tolist()
        for group in structured.unit_groups(model, masks)
    }


def slice_structured(model: RNNT, model_config: ModelConfig, masks: Mapping[str, Tensor]) -> tuple[RNNT, ModelConfig]:
    """(the smaller dense model, its model_config) from `model` with structured `masks` applied to its
    weights (an extracted sub-network, or an individual job's model)."""
    kept = kept_units(model, masks)
    layers = model.transcriber.transformer.emformer_layers
    widths: list[LayerWidth] = []
    pieces: dict[str, Tensor] = {}
    for index, layer in enumerate(layers):
        prefix = f"transcriber.transformer.emformer_layers.{index}"
        heads = kept.get(f"{prefix}.{structured.HEADS}", list(range(layer.attention.num_heads))) or [0]
        neurons = kept.get(f"{prefix}.{structured.NEURONS}", list(range(layer.pos_ff[1].out_features))) or [0]
        widths.append({"heads": len(heads), "ffn": len(neurons)})
        pieces.update(_layer_slices(prefix, layer, heads, neurons, masks))
    sliced_config: ModelConfig = {**model_config, LAYER_WIDTHS: widths}
    sliced = copy.deepcopy(model)
    narrow_layers(sliced, widths)
    state = {name: _masked(name, value, masks) for name, value in model.state_dict().items()}
    state.update(pieces)
    sliced.load_state_dict(state)
    return sliced.eval(), sliced_config


def _masked(name: str, value: Tensor, masks: Mapping[str, Tensor]) -> Tensor:
    return value * masks[name].to(value.dtype) if name in masks else value


def _layer_slices(
    prefix: str, layer: _EmformerLayer, heads: list[int], neurons: list[int], masks: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """The narrowed layer's attention and feed-forward tensors: kept rows of the input projections and
    of their biases, kept columns of the output projections (masked, so a unit kept only to keep its
    layer whole contributes zero)."""
    attention = layer.attention
    width = attention.input_dim
    head_width = width // attention.num_heads
    rows = torch.cat([torch.arange(h * head_width, (h + 1) * head_width) for h in heads])
    key_value_rows = torch.cat([rows, rows + width])
    neuron_rows = torch.tensor(neurons)
    parts = {
        "attention.emb_to_query": (attention.emb_to_query, rows, None),
        "attention.emb_to_key_value": (attention.emb_to_key_value, key_value_rows, None),
        "attention.out_proj": (attention.out_proj, None, rows),
        "pos_ff.1": (layer.pos_ff[1], neuron_rows, None),
        "pos_ff.4": (layer.pos_ff[4], None, neuron_rows),
    }
    sliced = {}
    for part, (linear, kept_rows, kept_columns) in parts.items():
        weight = _masked(f"{prefix}.{part}.weight", linear.weight.detach(), masks)
        if kept_rows is not None:
            sliced[f"{prefix}.{part}.weight"] = weight[kept_rows].clone()
            sliced[f"{prefix}.{part}.bias"] = linear.bias.detach()[kept_rows].clone()
        else:
            sliced[f"{prefix}.{part}.weight"] = weight[:, kept_columns].clone()
            sliced[f"{prefix}.{part}.bias"] = linear.bias.detach().clone()
    return sliced
