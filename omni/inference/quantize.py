"""int8 for the dense remainder of a model a device runs: every nn.Linear left dense (the masked
linears that no sparse kernel beat, and the unpruned input, predictor and joiner linears) becomes a
dynamically quantised int8 linear; linears on a sparse kernel stay as they are (PyTorch has no
int8 sparse CPU kernel).

Why torch.ao.quantization.quantize_dynamic although torch 2.14 marks it deprecated: it is the one
int8 path with a fast CPU kernel here (fbgemm). Measured on this machine kind (torch 2.14.1, 1
thread, a 5-row streaming chunk; docs/decisions.md): on the encoder's linear shapes it ran
1.2-6x faster than fp32, while torchao 0.18's Int8DynamicActivationInt8WeightConfig ran 10-100x
SLOWER than fp32 and its Int8WeightOnlyConfig 0.4-0.8x (no eager CPU kernel: torchao targets GPUs
and torch.compile). When quantize_dynamic goes, torchao's CPU path is where to look again.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


def int8_dense_remainder(model: nn.Module) -> nn.Module:
    """`model` itself, its remaining nn.Linear modules now computing in int8 (weights per tensor,
    activations quantised per call). In place (quantize_dynamic's own copy fails on CSR tensors): a
    caller that keeps the fp32 model passes omni.inference.sparse_model.copy_sharing_kernels of it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*deprecat.*")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)
