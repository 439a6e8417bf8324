"""The streaming Emformer RNN-T, built by torchaudio from a config preset, and its artefact format.

A model artefact is a plain dict (loadable with weights_only=True):
  {"model_config": {...}, "state_dict": {...}, "masks": {param name: bool tensor}, "meta": {...}}
`masks` is empty for a dense model; for a pruned one it names every pruned weight's kept positions.
A supernet's artefact adds "rankings": {param name: LayerRanking.state_dict()}, the rankings of its
last training step, which extraction cuts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NotRequired, TypedDict, cast

import torch
from torchaudio.models import RNNT, emformer_rnnt_model
from torchaudio.models.emformer import _EmformerLayer

from omni.atomic import load_torch, save_torch

if TYPE_CHECKING:  # a supernet's artefact holds its rankings
    from omni.sparsity.masks import RankingState

LAYER_WIDTHS: Final = "layer_widths"  # model_config: per Emformer layer {"heads", "ffn"} of a sliced structured model


class LayerWidth(TypedDict):
    heads: int
    ffn: int


class ModelConfig(TypedDict):
    """Everything needed to rebuild the network (a preset's dimensions, the input width, the symbols);
    stored inside every artefact as a plain dict."""

    input_dim: int
    encoding_dim: int
    num_symbols: int
    segment_length: int
    right_context_length: int
    time_reduction_input_dim: int
    time_reduction_stride: int
    num_heads: int
    ffn_dim: int
    num_layers: int
    dropout: float
    activation: str
    left_context_length: int
    max_memory_size: int
    symbol_embedding_dim: int
    num_lstm_layers: int
    lstm_dropout: float
    layer_widths: NotRequired[list[LayerWidth]]  # a sliced structured model's (LAYER_WIDTHS)


class ModelArtefact(TypedDict):
    """A model file's contents (the module docstring's format)."""

    model_config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    meta: dict[str, Any]
    rankings: NotRequired[dict[str, RankingState]]


def model_config_from(model: Mapping[str, int | float | str], num_symbols: int) -> ModelConfig:
    """The network of the rule section omni.job_params.model (the preset's dimensions and the input
    width, keys the config schema fixes) with `num_symbols` outputs."""
    return cast(ModelConfig, {**model, "num_symbols": num_symbols})


def build_model(model_config: ModelConfig) -> RNNT:
    c = model_config
    model = emformer_rnnt_model(
        input_dim=c["input_dim"],
        encoding_dim=c["encoding_dim"],
        num_symbols=c["num_symbols"],
        segment_length=c["segment_length"],
        right_context_length=c["right_context_length"],
        time_reduction_input_dim=c["time_reduction_input_dim"],
        time_reduction_stride=c["time_reduction_stride"],
        transformer_num_heads=c["num_heads"],
        transformer_ffn_dim=c["ffn_dim"],
        transformer_num_layers=c["num_layers"],
        transformer_dropout=c["dropout"],
        transformer_activation=c["activation"],
        transformer_left_context_length=c["left_context_length"],
        transformer_max_memory_size=c["max_memory_size"],
        transformer_weight_init_scale_strategy="depthwise",
        transformer_tanh_on_mem=True,
        symbol_embedding_dim=c["symbol_embedding_dim"],
        num_lstm_layers=c["num_lstm_layers"],
        lstm_layer_norm=True,
        lstm_layer_norm_epsilon=1e-3,
        lstm_dropout=c["lstm_dropout"],
    )
    if c.get(LAYER_WIDTHS) is not None:
        narrow_layers(model, c[LAYER_WIDTHS])
    return model


class NarrowEmformerLayer(_EmformerLayer):
    """An Emformer layer whose attention has fewer heads than the model's width allows: its streaming
    left-context keys and values are (heads x head width) wide, where torchaudio sizes them by the layer's
    input width. Everything else is torchaudio's layer."""

    def _init_state(self, batch_size: int, device: torch.device | None) -> list[torch.Tensor]:
        state = super()._init_state(batch_size, device)
        width = self.attention.input_dim
        state[1] = torch.zeros(self.left_context_length, batch_size, width, device=device)
        state[2] = torch.zeros(self.left_context_length, batch_size, width, device=device)
        return state


def narrow_layers(model: RNNT, widths: Sequence[LayerWidth]) -> None:
    """Give each Emformer layer its own head count and feed-forward width (`widths`, one {"heads",
    "ffn"} per layer; model_config key `layer_widths`): a structured sub-network as a smaller dense model.
    The linears are replaced by narrower ones (weights to be loaded); the head width and the attention's
    scaling stay the model's, and torchaudio's attention reads its width from `input_dim` and `num_heads`."""
    layers = model.transcriber.transformer.emformer_layers
    if len(widths) != len(layers):
        raise ValueError(f"model_config '{LAYER_WIDTHS}' gives {len(widths)} layers; the model has {len(layers)}")
    for layer, width in zip(layers, widths):
        attention, model_width = layer.attention, layer.input_dim
        inner = int(width["heads"]) * (model_width // attention.num_heads)
        attention.emb_to_query = torch.nn.Linear(model_width, inner)
        attention.emb_to_key_value = torch.nn.Linear(model_width, 2 * inner)
        attention.out_proj = torch.nn.Linear(inner, model_width)
        attention.num_heads, attention.input_dim = int(width["heads"]), inner
        layer.pos_ff[1] = torch.nn.Linear(model_width, int(width["ffn"]))
        layer.pos_ff[4] = torch.nn.Linear(int(width["ffn"]), model_width)
        layer.__class__ = NarrowEmformerLayer


def blank_id(model_config: ModelConfig) -> int:
    """The blank symbol is the last id: the tokenizer's pieces occupy 0..V-1."""
    return model_config["num_symbols"] - 1


def save_model(
    path: str | Path,
    state_dict: dict[str, torch.Tensor],
    model_config: ModelConfig,
    masks: dict[str, torch.Tensor] | None = None,
    meta: dict[str, Any] | None = None,
    rankings: Mapping[str, RankingState] | None = None,
) -> None:
    """Write an artefact from a plain state dict (no network needs building just to save it).
    `rankings` (a supernet's last per-layer rankings, LayerRanking.state_dict) are what extraction cuts."""
    state = {k: v.detach().cpu().clone() for k, v in state_dict.items()}
    artefact: ModelArtefact = {
        "model_config": model_config.copy(),
        "state_dict": state,
        "masks": {k: v.detach().cpu().bool() for k, v in (masks or {}).items()},
        "meta": dict(meta or {}),
    }
    if rankings:
        artefact["rankings"] = dict(rankings)
    save_torch(path, artefact)


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[RNNT, ModelArtefact]:
    """Return the network (eval mode, on `device`) and the whole artefact dict."""
    artefact: ModelArtefact = load_torch(path)
    model = build_model(artefact["model_config"])
    model.load_state_dict(artefact["state_dict"])
    return model.to(device).eval(), artefact
