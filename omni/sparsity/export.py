"""Compact export: the bytes a device would actually load, to report model size honestly.

A payload is a plain dict (torch.save-able, loadable with weights_only=True):

  {"format": "omni-compact", "version": 1, "model_config": {...}, "dtype": "float16",
   "unit": [br, bc],                      # pruning unit: [1, 1] unstructured, else the block
   "dense":  {name: tensor},              # floating tensors in `dtype`; int/bool buffers as they are
   "sparse": {name: {"shape": [R, C], "values": 1-D tensor in `dtype`, "encoding": ..., ...}}}

A masked weight keeps only its kept units' values (row-major over units, each block row-major
inside) plus their positions, encoded per layer as whichever is smaller:
  "bitmask": {"bits": uint8}                 one bit per unit, np.packbits order (MSB first)
  "csr":     {"crow": int, "col": int}       CSR over the unit grid, smallest integer dtypes
A bitmask costs units/8 bytes whatever the sparsity; CSR costs about kept * index bytes, so it
wins only at high sparsity on narrow layers (e.g. 90 % sparse with <= 256 unit columns, where a
column index fits one byte).
"""
from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchaudio.models import RNNT

from omni.asr.model import build_model
from omni.atomic import atomic_path
from omni.sparsity.masks import expand_units, to_units, unit_grid, unit_shape, units_alive

FORMAT = "omni-compact"
VERSION = 1
BITS_PER_BYTE = 8
BITMASK = "bitmask"
CSR = "csr"
# Smallest first: index tensors take the first dtype that holds their largest value.
INDEX_DTYPES = (torch.uint8, torch.int16, torch.int32, torch.int64)
Payload = dict[str, Any]


def export_compact(state_dict: Mapping[str, Tensor], masks: Mapping[str, Tensor], model_config: Mapping[str, Any],
                   dtype: torch.dtype, granularity: str, block_shape: Sequence[int]) -> Payload:
    """Kept values + positions for every masked weight, everything else dense in `dtype`."""
    if not dtype.is_floating_point:
        raise ValueError(f"export dtype must be floating point, got {dtype}")
    unknown = sorted(set(masks) - set(state_dict))
    if unknown:
        raise KeyError(f"export_compact: masks name weights absent from the state dict: {unknown}")
    unit = unit_shape(granularity, block_shape)
    dense = {name: _dense(t, dtype) for name, t in state_dict.items() if name not in masks}
    sparse = {name: _encode_sparse(name, t, masks[name], unit, dtype) for name, t in state_dict.items() if name in masks}
    return {"format": FORMAT, "version": VERSION, "model_config": dict(model_config),
            "dtype": _dtype_name(dtype), "unit": list(unit), "dense": dense, "sparse": sparse}


def _dtype_name(dtype: torch.dtype) -> str:
    """Stored as a string so the payload is primitives and tensors only."""
    return str(dtype).removeprefix("torch.")


def _dense(tensor: Tensor, dtype: torch.dtype) -> Tensor:
    """A fresh compact copy: torch.save writes a view's whole storage, which would inflate bytes."""
    target = dtype if tensor.is_floating_point() else tensor.dtype
    return tensor.detach().to(device="cpu", dtype=target, copy=True)


def _encode_sparse(name: str, weight: Tensor, mask: Tensor, unit: tuple[int, int], dtype: torch.dtype) -> Payload:
    unit_keep = _unit_keep(name, mask.detach().cpu().bool(), unit)
    values = to_units(weight.detach().cpu(), unit)[unit_keep].reshape(-1).to(dtype=dtype, copy=True)
    return {"shape": list(weight.shape), "values": values, **_cheaper_positions(unit_keep)}


def _unit_keep(name: str, mask: Tensor, unit: tuple[int, int]) -> Tensor:
    """Per-unit keep flags; a mask that is not constant inside each unit cannot be block-encoded."""
    unit_grid(mask.shape, unit, name)
    keep = units_alive(mask, unit)
    if not torch.equal(expand_units(keep, unit), mask):
        raise ValueError(f"{name}: mask is not constant over {list(unit)} blocks; export with the granularity "
                         "the masks were made with")
    return keep


def _cheaper_positions(unit_keep: Tensor) -> Payload:
    """Measure both encodings, keep the smaller (ties go to the bitmask, the simpler one)."""
    bitmask = {"encoding": BITMASK,
               "bits": torch.from_numpy(np.packbits(unit_keep.flatten().numpy()))}
    rows_kept = unit_keep.sum(dim=1)
    crow = torch.cat([rows_kept.new_zeros(1), rows_kept.cumsum(dim=0)])
    col = unit_keep.nonzero()[:, 1]
    csr = {"encoding": CSR,
           "crow": crow.to(_smallest_index_dtype(int(crow[-1]))),
           "col": col.to(_smallest_index_dtype(unit_keep.shape[1] - 1))}
    return csr if _position_bytes(csr) < _position_bytes(bitmask) else bitmask


def _smallest_index_dtype(max_value: int) -> torch.dtype:
    for dtype in INDEX_DTYPES:
        if max_value <= torch.iinfo(dtype).max:
            return dtype
    raise ValueError(f"index {max_value} does not fit any of {INDEX_DTYPES}")


def _position_bytes(positions: Payload) -> int:
    return sum(t.numel() * t.element_size() for t in positions.values() if isinstance(t, Tensor))


def load_compact(payload: Payload) -> RNNT:
    """Rebuild the network (eval mode). Values are upcast into the float32 model build_model makes."""
    if payload.get("format") != FORMAT or payload.get("version") != VERSION:
        raise ValueError(f"not an {FORMAT} v{VERSION} payload: format={payload.get('format')!r}, "
                         f"version={payload.get('version')!r}")
    unit = (payload["unit"][0], payload["unit"][1])
    state = dict(payload["dense"])
    for name, entry in payload["sparse"].items():
        state[name] = _decode_sparse(entry, unit)
    model = build_model(payload["model_config"])
    model.load_state_dict(state)
    return model.eval()


def _decode_sparse(entry: Payload, unit: tuple[int, int]) -> Tensor:
    grid_rows, grid_cols = unit_grid(entry["shape"], unit)
    unit_keep = _decode_positions(entry, grid_rows, grid_cols)
    values = entry["values"]
    units = values.new_zeros(grid_rows, grid_cols, *unit)
    units[unit_keep] = values.view(-1, *unit)
    return units.permute(0, 2, 1, 3).reshape(entry["shape"])


def _decode_positions(entry: Payload, grid_rows: int, grid_cols: int) -> Tensor:
    n_units = grid_rows * grid_cols
    if entry["encoding"] == BITMASK:
        flags = np.unpackbits(entry["bits"].numpy(), count=n_units)
        return torch.from_numpy(flags).bool().view(grid_rows, grid_cols)
    if entry["encoding"] == CSR:
        rows_kept = entry["crow"].long().diff()
        rows = torch.repeat_interleave(torch.arange(grid_rows), rows_kept)
        keep = torch.zeros(grid_rows, grid_cols, dtype=torch.bool)
        keep[rows, entry["col"].long()] = True
        return keep
    raise ValueError(f"unknown position encoding {entry['encoding']!r}")


def _serialized(payload: Payload) -> bytes:
    """torch.save names every zip record after the file it writes to, so saving to a path (an
    atomic temp name) would make the size depend on the name; a buffer always says 'archive'."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def save_compact(path: str | os.PathLike, payload: Payload) -> None:
    """Atomic write whose size equals export_bytes(payload), whatever the path."""
    data = _serialized(payload)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def export_bytes(path_or_payload: str | os.PathLike | Payload) -> int:
    """Bytes on disk: the file's size, or what save_compact would write for the payload."""
    if isinstance(path_or_payload, Mapping):
        return len(_serialized(path_or_payload))
    return Path(path_or_payload).stat().st_size


def physical_limit_bytes(masks: Mapping[str, Tensor], state_dict: Mapping[str, Tensor], bytes_per_value: int) -> int:
    """The floor no format beats without compression: kept values plus the dense remainder, no
    positions, no container (int/bool buffers at their own width, as the export keeps them)."""
    total = 0
    for name, tensor in state_dict.items():
        if name in masks:
            total += int(masks[name].count_nonzero()) * bytes_per_value
        elif tensor.is_floating_point():
            total += tensor.numel() * bytes_per_value
        else:
            total += tensor.numel() * tensor.element_size()
    return total


def overhead_ratio(payload: Payload, masks: Mapping[str, Tensor], state_dict: Mapping[str, Tensor]) -> float:
    """Export bytes / physical limit at the payload's dtype: what positions and container cost."""
    bytes_per_value = getattr(torch, payload["dtype"]).itemsize
    return export_bytes(payload) / physical_limit_bytes(masks, state_dict, bytes_per_value)
