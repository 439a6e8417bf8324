"""A pruned model for inference: every masked linear on the kernel that runs it fastest here
(omni.inference.sparse_linear), timed on the rows of one streaming chunk."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchaudio.models import RNNT

from omni.asr.model import ModelConfig
from omni.inference.sparse_linear import DENSE, KERNELS, KernelChoice, candidates, choose_kernel


@dataclass(frozen=True)
class LayerKernel:
    weight: str  # the masked weight's name
    shape: tuple[int, int]
    density: float  # kept fraction of the weight
    choice: KernelChoice


def streaming_chunk_rows(model_config: ModelConfig) -> int:
    """Encoder rows of one streaming chunk (a segment and its look-ahead, after time reduction):
    what each encoder linear multiplies per chunk on a device."""
    frames = model_config["segment_length"] + model_config["right_context_length"]
    return math.ceil(frames / model_config["time_reduction_stride"])


def sparse_inference_model(
    model: RNNT,
    masks: Mapping[str, Tensor],
    unit: tuple[int, int],
    rows: int,
    repeats: int,
    allowed: tuple[str, ...] = KERNELS,
    chosen: Mapping[str, str] | None = None,
    copy_model: bool = True,
) -> tuple[RNNT, list[LayerKernel]]:
    """A copy of `model` (eval mode) whose masked linears run on their fastest kernel for `rows`
    input rows, with what each layer chose and why (its candidates' times). `chosen` (weight name ->
    kernel, from an earlier build's layers) rebuilds those kernels without timing any. `copy_model`
    False changes `model` itself (a device that loads one model does not hold two)."""
    sparse = (copy.deepcopy(model) if copy_model else model).eval()
    modules = dict(sparse.named_modules())
    layers = []
    for weight_name, mask in masks.items():
        module_name = weight_name.removesuffix(".weight")
        linear = modules.get(module_name)
        if not isinstance(linear, nn.Linear) or not weight_name.endswith(".weight"):
            raise ValueError(f"mask {weight_name!r} is not on a Linear's weight; the sparse path runs linears only")
        weight = linear.weight.detach() * mask.to(linear.weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(weight)
        if chosen is None:
            kernel, choice = choose_kernel(weight, linear.bias, unit, rows, repeats, allowed)
        else:
            kernel = candidates(weight, linear.bias, unit)[chosen[weight_name]]()
            choice = KernelChoice(chosen[weight_name], {})
        if choice.kernel != DENSE:  # a dense choice keeps the model's own (masked) nn.Linear
            parent, _, child = module_name.rpartition(".")
            setattr(modules[parent] if parent else sparse, child, kernel)
        out_features, in_features = weight.shape  # a Linear's weight: two dimensions
        layers.append(LayerKernel(weight_name, (out_features, in_features), float(mask.float().mean()), choice))
    return sparse, layers


def copy_sharing_kernels(sparse: RNNT, layers: list[LayerKernel]) -> RNNT:
    """A copy of a model built by sparse_inference_model whose sparse kernel modules are the same
    objects, not copies: CSR tensors cannot be deep-copied, and nothing writes to a kernel at
    inference. What a second path over the same kernels (the int8 one) starts from."""
    modules = dict(sparse.named_modules())
    kernels = [modules[layer.weight.removesuffix(".weight")] for layer in layers if layer.choice.kernel != DENSE]
    return copy.deepcopy(sparse, memo={id(kernel): kernel for kernel in kernels})
