"""Compact export: exact reload, the per-layer position encoding, and honest byte accounting."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from test_sparsity import fixed_batch, logits_of, one_thread, plain_masked_state_dict, small_setup  # noqa: F401 (autouse fixture)
from torch import Tensor
from torchaudio.models import RNNT

from omni.atomic import load_torch
from omni.sparsity.export import (
    export_bytes,
    export_compact,
    load_compact,
    overhead_ratio,
    physical_limit_bytes,
    save_compact,
)
from omni.sparsity.masking import MaskedParameters
from omni.sparsity.masks import masks_at, prunable_parameter_names, rank_layers

FP16_TOLERANCE = 1e-2           # measured max |diff| 1.2e-3 on logits up to 2 (fp16 keeps ~3 digits)
MAX_OVERHEAD = 1.3              # positions + container over the physical limit
SAVED_FRACTION = 0.9            # share of the pruned values' bytes the export must actually save
FP32_BYTES = 4
MAX_BYTE_INDEX = torch.iinfo(torch.uint8).max


def masked_setup(granularity: str, block_shape: list[int], levels: Sequence[float]
                 ) -> tuple[RNNT, dict[str, Any], dict[str, Tensor], dict[str, Tensor]]:
    """(masked model, model config, plain masked state dict, masks); layer i gets levels[i % len]."""
    model, model_config, config = small_setup()
    names = prunable_parameter_names(model, config["sparsity"])
    rankings = rank_layers(model, names, granularity, block_shape)
    masks = masks_at(rankings, {name: levels[i % len(levels)] for i, name in enumerate(names)})
    masked = MaskedParameters(model, masks)
    return model, model_config, plain_masked_state_dict(masked), masks


@pytest.mark.parametrize(("granularity", "block_shape"), [("unstructured", [1, 1]), ("block", [4, 4]),
                                                          ("block", [8, 1])])
def test_fp32_export_reloads_to_identical_outputs(granularity: str, block_shape: list[int], tmp_path: Path) -> None:
    model, model_config, state, masks = masked_setup(granularity, block_shape, [0.9])
    payload = export_compact(state, masks, model_config, torch.float32, granularity, block_shape)
    path = tmp_path / "model.pt"
    save_compact(path, payload)
    reloaded = load_compact(load_torch(path))  # weights_only=True: plain containers only
    batch = fixed_batch(model_config)
    assert torch.equal(logits_of(reloaded, batch), logits_of(model, batch))
    assert export_bytes(path) == export_bytes(payload)


def test_each_layer_takes_the_cheaper_position_encoding() -> None:
    """Dense-ish layers pay one bit per weight; very sparse ones pay CSR indices of the smallest dtype."""
    low, high = 0.3, 0.97
    model, model_config, state, masks = masked_setup("unstructured", [1, 1], [low, high])
    payload = export_compact(state, masks, model_config, torch.float32, "unstructured", [1, 1])
    encodings = {name: entry["encoding"] for name, entry in payload["sparse"].items()}
    assert set(encodings.values()) == {"bitmask", "csr"}
    for name, entry in payload["sparse"].items():
        rows, cols = entry["shape"]
        kept = int(masks[name].sum())
        assert entry["values"].numel() == kept
        if entry["encoding"] == "csr":
            assert entry["col"].dtype == (torch.uint8 if cols - 1 <= MAX_BYTE_INDEX else torch.int16)
            assert entry["crow"].numel() == rows + 1 and entry["col"].numel() == kept
        else:
            assert entry["bits"].dtype == torch.uint8 and entry["bits"].numel() == -(-rows * cols // 8)
    batch = fixed_batch(model_config)
    assert torch.equal(logits_of(load_compact(payload), batch), logits_of(model, batch))


def test_fp16_export_is_close_and_half_the_bytes() -> None:
    model, model_config, state, masks = masked_setup("block", [1, 4], [0.7])
    fp32 = export_compact(state, masks, model_config, torch.float32, "block", [1, 4])
    fp16 = export_compact(state, masks, model_config, torch.float16, "block", [1, 4])
    assert all(t.dtype == torch.float16 for t in fp16["dense"].values() if t.is_floating_point())
    batch = fixed_batch(model_config)
    torch.testing.assert_close(logits_of(load_compact(fp16), batch), logits_of(model, batch),
                               rtol=FP16_TOLERANCE, atol=FP16_TOLERANCE)
    assert export_bytes(fp16) < 0.6 * export_bytes(fp32)
    for payload in (fp32, fp16):
        assert 1.0 < overhead_ratio(payload, masks, state) < MAX_OVERHEAD


def test_sparse_export_is_well_under_the_dense_checkpoint() -> None:
    """The small model keeps a large unprunable predictor/joiner, so compare with what pruning removed."""
    model, model_config, state, masks = masked_setup("unstructured", [1, 1], [0.9])
    payload = export_compact(state, masks, model_config, torch.float32, "unstructured", [1, 1])
    dense_bytes = export_bytes({k: v.clone() for k, v in state.items()})
    pruned_bytes = sum(int((~m).sum()) for m in masks.values()) * FP32_BYTES
    assert export_bytes(payload) < dense_bytes - SAVED_FRACTION * pruned_bytes


def test_physical_limit_counts_kept_values_and_the_dense_rest() -> None:
    _, _, state, masks = masked_setup("unstructured", [1, 1], [0.8])
    kept = sum(int(m.sum()) for m in masks.values())
    rest = sum(t.numel() for name, t in state.items() if name not in masks)
    for bytes_per_value in (FP32_BYTES, torch.float16.itemsize):
        assert physical_limit_bytes(masks, state, bytes_per_value) == (kept + rest) * bytes_per_value


def test_block_export_rejects_masks_that_are_not_block_constant() -> None:
    _, model_config, state, masks = masked_setup("unstructured", [1, 1], [0.5])
    with pytest.raises(ValueError, match="not constant"):
        export_compact(state, masks, model_config, torch.float32, "block", [4, 4])


def test_load_compact_rejects_other_payloads() -> None:
    with pytest.raises(ValueError, match="omni-compact"):
        load_compact({"format": "something-else", "version": 1})


def test_dense_buffers_keep_their_integer_dtype() -> None:
    _, model_config, state, masks = masked_setup("unstructured", [1, 1], [0.5])
    with_buffer: dict[str, Tensor] = {**state, "counter": torch.tensor([3], dtype=torch.int64)}
    payload = export_compact(with_buffer, masks, model_config, torch.float16, "unstructured", [1, 1])
    assert payload["dense"]["counter"].dtype == torch.int64
