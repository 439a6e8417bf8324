"""Compact export: the bytes a device would actually load, to report model size honestly.

A payload is a plain dict of primitives and tensors:

  {"format": "omni-compact", "version": 2, "model_config": {...}, "dtype": "float16",
   "unit": [br, bc],                      # pruning unit: [1, 1] unstructured, else the block
   "granularity": "structured",           # only for structured masks (stored per element: unit [1, 1])
   "dense":  {name: tensor},              # floating tensors in `dtype`; int/bool buffers as they are
   "sparse": {name: {"shape": [R, C], "values": 1-D tensor in `dtype`, "encoding": ..., ...}}}

A masked weight keeps only its kept units' values (row-major over units, each block row-major
inside) plus their positions, encoded per layer as whichever is smaller:
  "bitmask": {"bits": uint8}                 one bit per unit, np.packbits order (MSB first)
  "rice":    {"k": int, "count": int,        the run of pruned units before each kept one (row-major
              "high": uint8, "low": uint8}   over the unit grid), Rice-coded with parameter k: run >> k
                                             in unary (ones closed by a zero) in `high`, its k low bits
                                             in `low`, both np.packbits order
A bitmask costs one bit per unit whatever the sparsity: the entropy of the mask at 50 %, twice it
at 90 %. Rice-coded runs come within ~2 % of the entropy at every sparsity from 70 % (a magnitude
mask's positions are close to independent draws, so its runs are close to geometric, the
distribution Rice codes fit). The two streams are apart so that decoding is vectorised: the unary
parts end at the zeros of `high`.

On disk (save_compact / read_compact) the payload's tensors are packed into one flat buffer per
dtype, each tensor replaced by {"dtype", "offset", "shape"} into its buffer: torch.save spends
~290 bytes of zip record on every tensor, 3 % of the tiny model at 90 %; packed, a few records.
The file stays loadable with weights_only=True.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor
from torchaudio.models import RNNT

from omni.asr.model import ModelConfig, build_model
from omni.atomic import atomic_path, load_torch
from omni.sparsity.masks import ELEMENT_UNIT, STRUCTURED, expand_units, to_units, unit_grid, unit_shape, units_alive

FORMAT = "omni-compact"
VERSION = 2  # 2: Rice-coded runs replaced CSR positions (a v1 file is re-exported, not read)
BITS_PER_BYTE = 8
BITMASK = "bitmask"
RICE = "rice"
MAX_RICE_PARAMETER = 24  # runs of up to 2^24 pruned units in their low bits: more than any layer here has
Payload = dict[str, Any]


def export_compact(
    state_dict: Mapping[str, Tensor],
    masks: Mapping[str, Tensor],
    model_config: ModelConfig,
    dtype: torch.dtype,
    granularity: str,
    block_shape: Sequence[int],
) -> Payload:
    """Kept values + positions for every masked weight, everything else dense in `dtype`."""
    if not dtype.is_floating_point:
        raise ValueError(f"export dtype must be floating point, got {dtype}")
    unknown = sorted(set(masks) - set(state_dict))
    if unknown:
        raise KeyError(f"export_compact: masks name weights absent from the state dict: {unknown}")
    # Structured masks (whole rows of one weight, columns of another) are stored element by element.
    unit = ELEMENT_UNIT if granularity == STRUCTURED else unit_shape(granularity, block_shape)
    dense = {name: _dense(t, dtype) for name, t in state_dict.items() if name not in masks}
    sparse = {
        name: _encode_sparse(name, t, masks[name], unit, dtype) for name, t in state_dict.items() if name in masks
    }
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": dict(model_config),
        "dtype": _dtype_name(dtype),
        "unit": list(unit),
        "dense": dense,
        "sparse": sparse,
    }
    if granularity == STRUCTURED:
        payload["granularity"] = STRUCTURED  # the runtime export slices it (omni.sparsity.slicing)
    return payload


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
        raise ValueError(
            f"{name}: mask is not constant over {list(unit)} blocks; export with the granularity "
            "the masks were made with"
        )
    return keep


def _cheaper_positions(unit_keep: Tensor) -> Payload:
    """Measure both encodings, keep the smaller (ties go to the bitmask, the simpler one)."""
    flags = unit_keep.flatten().numpy()
    bitmask = {"encoding": BITMASK, "bits": torch.from_numpy(np.packbits(flags))}
    rice = _rice_positions(flags)
    return rice if _position_bytes(rice) < _position_bytes(bitmask) else bitmask


def _rice_positions(flags: np.ndarray) -> Payload:
    """Runs of pruned units before each kept unit, Rice-coded with the parameter that codes them shortest."""
    runs = np.diff(np.flatnonzero(flags), prepend=-1) - 1
    k = min(range(MAX_RICE_PARAMETER + 1), key=lambda k: int((runs >> k).sum()) + runs.size * (1 + k))
    high_parts = runs >> k
    high = np.ones(int(high_parts.sum()) + runs.size, dtype=np.uint8)
    high[np.cumsum(high_parts + 1) - 1] = 0  # each unary part closes with a zero
    low = ((runs[:, None] >> np.arange(k - 1, -1, -1)) & 1).astype(np.uint8)
    return {
        "encoding": RICE,
        "k": k,
        "count": int(runs.size),
        "high": torch.from_numpy(np.packbits(high)),
        "low": torch.from_numpy(np.packbits(low)),
    }


def _rice_flags(entry: Payload, n_units: int) -> np.ndarray:
    """Kept-unit flags from Rice-coded runs. The zeros of `high` close the unary parts; its padding
    bits are zeros too, hence only the first `count`."""
    k, count = entry["k"], entry["count"]
    ends = np.flatnonzero(np.unpackbits(entry["high"].numpy()) == 0)[:count]
    high_parts = np.diff(ends, prepend=-1) - 1
    low_bits = np.unpackbits(entry["low"].numpy(), count=count * k).reshape(count, k).astype(np.int64)
    runs = (high_parts << k) | (low_bits << np.arange(k - 1, -1, -1)).sum(axis=1)
    flags = np.zeros(n_units, dtype=bool)
    flags[np.cumsum(runs + 1) - 1] = True
    return flags


def _position_bytes(positions: Payload) -> int:
    return sum(t.numel() * t.element_size() for t in positions.values() if isinstance(t, Tensor))


def load_compact(payload: Payload) -> RNNT:
    """Rebuild the network (eval mode). Values are upcast into the float32 model build_model makes."""
    if payload.get("format") != FORMAT or payload.get("version") != VERSION:
        raise ValueError(
            f"not an {FORMAT} v{VERSION} payload: format={payload.get('format')!r}, version={payload.get('version')!r}"
        )
    unit = (payload["unit"][0], payload["unit"][1])
    state = dict(payload["dense"])
    for name, entry in payload["sparse"].items():
        state[name] = _decode_sparse(entry, unit)
    model = build_model(payload["model_config"])
    model.load_state_dict(state)
    return model.eval()


def compact_model_config(payload: Payload) -> ModelConfig:
    """A copy of the payload's model_config."""
    # export_compact stored the model's ModelConfig, as a plain dict
    return cast(ModelConfig, dict(payload["model_config"]))


def compact_masks(payload: Payload) -> dict[str, Tensor]:
    """The masks of the payload's sparse weights (element-level, bool), decoded from their positions."""
    unit = (payload["unit"][0], payload["unit"][1])
    return {
        name: expand_units(_decode_positions(entry, *unit_grid(entry["shape"], unit)), unit)
        for name, entry in payload["sparse"].items()
    }


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
    if entry["encoding"] == RICE:
        return torch.from_numpy(_rice_flags(entry, n_units)).view(grid_rows, grid_cols)
    raise ValueError(f"unknown position encoding {entry['encoding']!r}")


def _serialized(payload: Payload) -> bytes:
    """torch.save names every zip record after the file it writes to, so saving to a path (an
    atomic temp name) would make the size depend on the name; a buffer always says 'archive'."""
    buffer = io.BytesIO()
    torch.save(_packed(payload), buffer)
    return buffer.getvalue()


def _packed(payload: Payload) -> Payload:
    """The payload with every tensor moved into one flat buffer per dtype (in payload order)."""
    buffers: dict[str, list[Tensor]] = {}
    offsets: dict[str, int] = {}

    def reference(tensor: Tensor) -> Payload:
        dtype = _dtype_name(tensor.dtype)
        offset = offsets.get(dtype, 0)
        buffers.setdefault(dtype, []).append(tensor.reshape(-1))
        offsets[dtype] = offset + tensor.numel()
        return {"dtype": dtype, "offset": offset, "shape": list(tensor.shape)}

    packed = _map_tensors(payload, reference)
    return {**packed, "buffers": {dtype: torch.cat(parts) for dtype, parts in buffers.items()}}


def _unpacked(stored: Payload) -> Payload:
    buffers = stored["buffers"]

    def tensor_of(ref: Payload) -> Tensor:
        count = math.prod(ref["shape"])
        return buffers[ref["dtype"]][ref["offset"] : ref["offset"] + count].view(ref["shape"])

    return _map_tensors(
        {key: value for key, value in stored.items() if key != "buffers"},
        tensor_of,
        is_leaf=lambda value: isinstance(value, Mapping) and set(value) == {"dtype", "offset", "shape"},
    )


def _map_tensors(tree: Any, function: Any, is_leaf: Any = lambda value: isinstance(value, Tensor)) -> Any:
    if is_leaf(tree):
        return function(tree)
    if isinstance(tree, Mapping):
        return {key: _map_tensors(value, function, is_leaf) for key, value in tree.items()}
    return tree


def save_compact(path: str | os.PathLike, payload: Payload) -> None:
    """Atomic write whose size equals export_bytes(payload), whatever the path."""
    data = _serialized(payload)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def read_compact(path: str | os.PathLike) -> Payload:
    """The payload save_compact wrote (weights_only load: plain containers only; a file that fails to
    load raises omni.atomic.ArtefactError naming it)."""
    return _unpacked(load_torch(path))


def export_bytes(path_or_payload: str | os.PathLike | Payload) -> int:
    """Bytes on disk: the file's size, or what save_compact would write for the payload."""
    if isinstance(path_or_payload, Mapping):
        return len(_serialized(path_or_payload))
    return Path(path_or_payload).stat().st_size


def physical_limit_bytes(
    masks: Mapping[str, Tensor], state_dict: Mapping[str, Tensor], bytes_per_value: int, unit: Sequence[int] = (1, 1)
) -> int:
    """The floor no format beats without compressing the values: kept values, the dense remainder,
    and for each masked weight the fewest bits that name which of its units are kept (log2 of the
    number of ways to keep that many: the entropy of the mask), no container. int/bool buffers
    count at their own width, as the export keeps them."""
    total_bytes, position_bits = 0, 0.0
    for name, tensor in state_dict.items():
        if name in masks:
            total_bytes += int(masks[name].count_nonzero()) * bytes_per_value
            keep = units_alive(masks[name].detach().cpu().bool(), (unit[0], unit[1]))
            position_bits += log2_choose(keep.numel(), int(keep.count_nonzero()))
        elif tensor.is_floating_point():
            total_bytes += tensor.numel() * bytes_per_value
        else:
            total_bytes += tensor.numel() * tensor.element_size()
    return total_bytes + math.ceil(position_bits / BITS_PER_BYTE)


def log2_choose(n: int, k: int) -> float:
    """log2 of n choose k, through log-gamma (exact enough for millions of units)."""
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)) / math.log(2)


def overhead_ratio(payload: Payload, masks: Mapping[str, Tensor], state_dict: Mapping[str, Tensor]) -> float:
    """Export bytes / physical limit at the payload's dtype: what positions and container cost."""
    bytes_per_value = getattr(torch, payload["dtype"]).itemsize
    return export_bytes(payload) / physical_limit_bytes(masks, state_dict, bytes_per_value, payload["unit"])
