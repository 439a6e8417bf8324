"""One export_runtimes job: a model's compact fp32 export -> its bundle of streaming programs.

From the compact export rather than the training artefact: the bundle then holds exactly the
weights the size accounting counted (pruned weights as zeros, the runtimes' kernels being dense); a
structured model's pruned neurons and heads are sliced away instead (omni.sparsity.slicing).
The bundle is built in a scratch folder beside its place and moved there whole, so a killed job
leaves no folder that looks like an export.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omni.asr.frontend import Frontend
from omni.data.features import LogMel, load_feature_stats
from omni.data.tokenizer import Tokenizer
from omni.deploy.export import export_bundle
from omni.sparsity.export import compact_masks, compact_model_config, load_compact, read_compact
from omni.sparsity.masks import STRUCTURED
from omni.sparsity.slicing import slice_structured


@dataclass
class RuntimeExportPaths:
    export: Path  # the compact fp32 export (omni.jobs.export)
    feature_stats: Path
    tokenizer: Path
    bundle: Path  # the folder to create


def run_runtime_export_job(runtimes: Sequence[str], logmel: Mapping[str, Any], paths: RuntimeExportPaths) -> None:
    payload = read_compact(paths.export)
    model_config = compact_model_config(payload)
    model = load_compact(payload).eval()
    if payload.get("granularity") == STRUCTURED:  # whole neurons and heads pruned: a smaller dense model
        model, model_config = slice_structured(model, model_config, compact_masks(payload))
    frontend = Frontend(
        LogMel.from_section(logmel), load_feature_stats(paths.feature_stats), model_config["right_context_length"]
    )
    paths.bundle.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{paths.bundle.name}.", suffix=".tmp", dir=paths.bundle.parent))
    try:
        bundle = export_bundle(model, model_config, frontend, Tokenizer(paths.tokenizer), scratch, tuple(runtimes))
        scratch.replace(paths.bundle)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    print(f"exported {paths.export} -> {paths.bundle}: {', '.join(sorted(bundle.variants))}", flush=True)
