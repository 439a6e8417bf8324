"""One evaluation job: a model on one split, every decode mode, with its cost record."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omni.asr.evaluate import evaluate_model, model_size_fields
from omni.asr.frontend import Frontend
from omni.asr.model import load_model
from omni.atomic import write_dataframe, write_json
from omni.costs import CostMeter
from omni.data.batches import UtteranceSet
from omni.data.features import LogMel, load_feature_stats
from omni.data.manifest import read_manifest
from omni.data.tokenizer import Tokenizer
from omni.job_names import EVALUATE
from omni.runtime import resolve_device, seed_everything, set_threads


@dataclass
class EvaluationPaths:
    model: Path
    export_info: Path
    manifest: Path
    feature_stats: Path
    tokenizer: Path
    out_dir: Path  # receives <decode>.tsv and summary.json
    cost_out: Path


def run_evaluation_job(
    evaluation: Mapping[str, Any],
    logmel: Mapping[str, Any],
    arm: str,
    seed: int,
    tag: str,
    split: str,
    paths: EvaluationPaths,
    threads: int,
) -> dict[str, Any]:
    """`evaluation` and `logmel` are the rule sections omni.job_params.evaluation / .logmel; `seed` is the
    model's training seed (it names the run; decoding is deterministic)."""
    set_threads(threads)
    seed_everything(evaluation["seed"])
    device = resolve_device(evaluation["device"])
    meter = CostMeter(EVALUATE, arm, None, device, threads)
    model, artefact = load_model(paths.model, device)
    model_config = artefact["model_config"]
    tokenizer = Tokenizer(paths.tokenizer)
    frontend = Frontend(
        LogMel.from_section(logmel), load_feature_stats(paths.feature_stats), model_config["right_context_length"]
    ).to(device)
    utterances = UtteranceSet(read_manifest(paths.manifest), None, logmel["sample_rate"], cache_audio=True)
    # job_params.evaluation declares the beam width only when a beam decode runs
    results = evaluate_model(
        model,
        model_config,
        frontend,
        utterances,
        tokenizer,
        evaluation["decodes"],
        evaluation.get("beam_width"),
        evaluation["batch_size"],
        device,
        f"{arm}/seed{seed}/{tag}/{split}",
    )
    export_info = json.loads(Path(paths.export_info).read_text())
    summary: dict[str, Any] = {
        "arm": arm,
        "seed": seed,
        "tag": tag,
        "split": split,
        "sparsity": float(artefact["meta"].get("sparsity", 0.0)),
        **model_size_fields(model, artefact["masks"]),
        "export_bytes_fp32": export_info["fp32"]["bytes"],
        "export_bytes_fp16": export_info["fp16"]["bytes"],
        "decodes": {},
    }
    audio_seconds = 0.0
    for decode, (table, decode_summary) in results.items():
        write_dataframe(paths.out_dir / f"{decode}.tsv", table)
        summary["decodes"][decode] = decode_summary
        audio_seconds += decode_summary["audio_seconds"]
    meter.record.sparsity = summary["sparsity"]
    meter.finish(
        paths.cost_out,
        steps=0,
        audio_hours=audio_seconds / 3600.0,
        extra={"tag": tag, "split": split, "decodes": list(results)},
    )
    write_json(paths.out_dir / "summary.json", summary)
    return summary
