"""Export one model artefact compactly in fp32 and fp16 and account for the bytes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from omni.atomic import load_torch
from omni.sparsity.export import (
    export_bytes,
    export_compact,
    load_compact,
    physical_limit_bytes,
    read_compact,
    save_compact,
)

EXPORT_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def export_model_files(
    model_path: Path, sparsity_cfg: Mapping[str, Any], outputs: Mapping[str, Path]
) -> dict[str, Any]:
    """Write one compact file per dtype in `outputs` (keys of EXPORT_DTYPES); return sizes."""
    artefact = load_torch(model_path)
    state, masks = artefact["state_dict"], artefact["masks"]
    info: dict[str, Any] = {}
    for name, dtype in EXPORT_DTYPES.items():
        payload = export_compact(
            state, masks, artefact["model_config"], dtype, sparsity_cfg["granularity"], sparsity_cfg["block_shape"]
        )
        save_compact(outputs[name], payload)
        check_round_trip(outputs[name], state, dtype)
        size = export_bytes(outputs[name])
        limit = physical_limit_bytes(masks, state, dtype.itemsize, payload["unit"])
        info[name] = {"bytes": size, "physical_limit_bytes": limit, "overhead_ratio": size / limit}
    return info


def check_round_trip(path: Path, state: Mapping[str, torch.Tensor], dtype: torch.dtype) -> None:
    """The bytes counted must be a model a device can load: rebuild it from the written file and
    compare every tensor with the source at the export's precision."""
    rebuilt = load_compact(read_compact(path)).state_dict()
    for name, source in state.items():
        if not torch.equal(rebuilt[name], source.to(dtype).to(rebuilt[name].dtype)):
            raise ValueError(f"export {path}: tensor {name!r} does not survive the round trip at {dtype}")
