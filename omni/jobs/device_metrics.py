"""One device_metrics job: what a model's fp16 export costs a device, on three paths, and what its
precision costs in WER.

  dense   the export as a dense model (pruned weights are zeros the matmuls still multiply)
  sparse  every masked linear on the kernel that times fastest on this machine for one streaming
          chunk on one thread (omni.inference.sparse_model), dense where no sparse kernel is faster
  int8    the sparse path with its remaining dense linears in int8 (omni.inference.quantize)
Each decodes the same utterances greedily, streaming, timed per chunk on 1 thread (the on-device
case) and on the job's threads, the three paths taking turns utterance by utterance so that their
speed-ups over dense are paired ratios (omni.inference.speed.time_streaming); peak memory is
measured per path in a process of its own on 1 thread. The fp16 export (upcast, as the dense path
runs it) and the int8 path are also scored on the whole split, batched greedy full-utterance
decode, beside the fp32 model's WER of the same decode from its evaluation.
"""
from __future__ import annotations

import math
import statistics
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from omni.asr.evaluate import decode_split
from omni.asr.frontend import Frontend
from omni.atomic import write_json
from omni.data.batches import UtteranceSet
from omni.data.features import load_feature_stats
from omni.data.manifest import read_manifest
from omni.data.tokenizer import Tokenizer
from omni.inference.quantize import int8_dense_remainder
from omni.inference.sparse_linear import DENSE
from omni.inference.sparse_model import copy_sharing_kernels, sparse_inference_model, streaming_chunk_rows
from omni.inference.speed import Utterance, peak_memory_mb, time_streaming
from omni.runtime import set_threads
from omni.sparsity.export import compact_masks, load_compact, read_compact
from omni.write_errors import explained_write_errors

PATHS = ("dense", "sparse", "int8")
WER_DECODE = "greedy-full"   # batched: the whole split in seconds (the evaluation's streaming decode is per utterance)
MEMORY_KEYS = ("peak_rss_mb", "model_rss_mb")   # omni.inference.peak_memory's reply
ON_DEVICE_THREADS = 1


@dataclass
class DeviceMetricsPaths:
    export: Path           # the fp16 compact export
    manifest: Path         # the split whose first utterances are decoded
    feature_stats: Path
    tokenizer: Path
    out: Path              # the job's JSON record


def speed_utterances(manifest: Path, frontend: Frontend, sample_rate: int, count: int) -> list[Utterance]:
    """The manifest's first `count` utterances by id, as normalised log-mel features."""
    table = read_manifest(manifest).sort_values("utt_id").head(count).reset_index(drop=True)
    utterances = UtteranceSet(table, None, sample_rate, cache_audio=False)
    chosen = []
    for index in range(len(utterances)):
        batch = utterances.collate([index])
        feats, lengths = frontend.features(batch.waveforms, batch.wave_lengths)
        chosen.append(Utterance(feats, int(lengths[0]), batch.audio_seconds))
    return chosen


def run_device_metrics_job(speed: Mapping[str, Any], logmel: Mapping[str, Any], arm: str, seed: int, tag: str,
                           paths: DeviceMetricsPaths, threads: int) -> dict[str, Any]:
    """`speed` is omni.job_params.speed: utterances timed, timed calls per candidate kernel, whether
    to measure peak memory, the batch size of the WER decode."""
    set_threads(threads)
    payload = read_compact(paths.export)
    model_config = dict(payload["model_config"])
    unit = (payload["unit"][0], payload["unit"][1])
    masks = compact_masks(payload)
    dense = load_compact(payload)
    frontend = Frontend(logmel, load_feature_stats(paths.feature_stats), model_config["right_context_length"])
    utterances = speed_utterances(paths.manifest, frontend, logmel["sample_rate"], speed["utterances"])
    torch.set_num_threads(ON_DEVICE_THREADS)   # kernels chosen for the on-device case
    sparse, layers = sparse_inference_model(dense, masks, unit, streaming_chunk_rows(model_config),
                                            speed["kernel_repeats"])
    chosen = {layer.weight: layer.choice.kernel for layer in layers}
    models = dict(zip(PATHS, (dense, sparse, int8_dense_remainder(copy_sharing_kernels(sparse, layers)))))
    kept = sum(int(mask.count_nonzero()) for mask in masks.values())
    total = sum(mask.numel() for mask in masks.values())
    record: dict[str, Any] = {
        "arm": arm, "seed": seed, "tag": tag, "sparsity": 1.0 - kept / total if total else 0.0,
        "export_bytes": paths.export.stat().st_size, "utterances": len(utterances),
        "audio_seconds": sum(u.audio_seconds for u in utterances), "job_threads": threads,
        "kernels": dict(Counter(layer.choice.kernel for layer in layers)),
        "sparse_linears": sum(layer.choice.kernel != DENSE for layer in layers), "masked_linears": len(layers),
    }
    for label, count in (("t1", ON_DEVICE_THREADS), ("tjob", threads)):
        measured = time_streaming(models, model_config, utterances, count)
        for name in PATHS:
            record.update(measured[name].fields(f"{name}_{label}"))
        for name in ("sparse", "int8"):
            record[f"{name}_speedup_{label}"] = measured[name].speedup_over(measured["dense"])
    for name in ("sparse", "int8"):   # utterances transcribed as the dense path does
        record[f"{name}_same_hypotheses"] = statistics.fmean(
            ours == theirs for ours, theirs in zip(measured[name].hypotheses, measured["dense"].hypotheses))
    set_threads(threads)
    record.update(split_wers({"fp16": dense, "int8": models["int8"]}, model_config, frontend, logmel["sample_rate"],
                             paths, speed["batch_size"]))
    record.update(peak_memory(paths, utterances, chosen)
                  if speed["peak_memory"] else {f"{name}_{key}": math.nan for name in PATHS for key in MEMORY_KEYS})
    write_json(paths.out, record)
    return record


def split_wers(models: Mapping[str, torch.nn.Module], model_config: Mapping[str, Any], frontend: Frontend,
               sample_rate: int, paths: DeviceMetricsPaths, batch_size: int) -> dict[str, Any]:
    """`<name>_wer` of each model on the whole split (WER_DECODE), and the decode's name."""
    manifest = read_manifest(paths.manifest)
    utterances = UtteranceSet(manifest, None, sample_rate, cache_audio=True)
    tokenizer = Tokenizer(paths.tokenizer)
    wers: dict[str, Any] = {"wer_decode": WER_DECODE, "wer_utterances": len(manifest)}
    for name, model in models.items():
        _, summary = decode_split(model, dict(model_config), frontend, utterances, tokenizer, WER_DECODE, None,
                                  batch_size, torch.device("cpu"), f"{name} export")
        wers[f"{name}_wer"] = summary["wer"]
    return wers


def peak_memory(paths: DeviceMetricsPaths, utterances: list[Utterance], chosen: dict[str, str]) -> dict[str, float]:
    """Each path's peak memory, decoding the same utterances on 1 thread in a process of its own."""
    record = {}
    with tempfile.TemporaryDirectory(dir=paths.out.parent) as workdir:
        features = Path(workdir) / "features.pt"
        with explained_write_errors(features):
            torch.save({"feats": [u.feats for u in utterances], "lengths": [u.length for u in utterances]}, features)
        for name, kernels, int8 in zip(PATHS, (None, chosen, chosen), (False, False, True)):
            memory = peak_memory_mb({"export": str(paths.export), "features": str(features), "kernels": kernels,
                                     "int8": int8, "threads": ON_DEVICE_THREADS}, Path(workdir))
            record.update({f"{name}_{key}": memory[key] for key in MEMORY_KEYS})
    return record
