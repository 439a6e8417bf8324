"""Export one model artefact compactly in fp32 and fp16 and account for the bytes."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from omni.atomic import load_torch
from omni.sparsity.export import export_bytes, export_compact, physical_limit_bytes, save_compact

EXPORT_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def export_model_files(model_path: Path, sparsity_cfg: Mapping[str, Any], outputs: Mapping[str, Path]) -> dict[str, Any]:
    """Write one compact file per dtype in `outputs` (keys of EXPORT_DTYPES); return sizes."""
    artefact = load_torch(model_path)
    state, masks = artefact["state_dict"], artefact["masks"]
    info: dict[str, Any] = {}
    for name, dtype in EXPORT_DTYPES.items():
        payload = export_compact(state, masks, artefact["model_config"], dtype,
                                 sparsity_cfg["granularity"], sparsity_cfg["block_shape"])
        save_compact(outputs[name], payload)
        size = export_bytes(outputs[name])
        limit = physical_limit_bytes(masks, state, dtype.itemsize)
        info[name] = {"bytes": size, "physical_limit_bytes": limit, "overhead_ratio": size / limit}
    return info
