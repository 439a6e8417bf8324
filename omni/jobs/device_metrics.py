"""One device_metrics job: what a model costs a device, on every path a device could run it, and what
each path's precision costs in WER.

  dense    eager PyTorch on the fp16 export as a dense model (pruned weights are zeros it still multiplies)
  sparse   eager, every masked linear on the kernel that times fastest on this machine for one streaming
           chunk on one thread (omni.inference.sparse_model), dense where no sparse kernel is faster
  int8     eager, the sparse path with its remaining dense linears in int8 (omni.inference.quantize)
  onnx, onnx_int8, executorch, executorch_int8
           the model's exported bundle (omni.deploy) in ONNX Runtime / ExecuTorch + XNNPACK, fp32 / int8:
           what a device ships. Their kernels do not skip zeros, so they are dense paths.
Each decodes the same utterances greedily, streaming, timed per chunk on 1 thread (the on-device
case) and on the job's threads, the paths taking turns utterance by utterance so that their
speed-ups are paired ratios (omni.inference.speed.time_streaming). The reference of the speed-ups is
the best dense runtime path: the fastest runtime path of this model on 1 thread (what a device
engineer would pick instead of the sparse kernels). Peak memory is measured per path in a process of
its own on 1 thread. WER on the whole split: the fp16 export and the int8 path in a batched greedy
full-utterance decode (beside the fp32 model's WER of the same decode from its evaluation), and each
runtime path streaming from the audio through its own front end, as the device would decode it.
"""

from __future__ import annotations

import gzip
import math
import statistics
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from omni.asr.evaluate import decode_split, score_hypotheses, summarize
from omni.asr.frontend import Frontend
from omni.asr.model import ModelConfig
from omni.atomic import write_json
from omni.data.batches import UtteranceSet
from omni.data.features import LogMel, load_feature_stats
from omni.data.manifest import read_manifest
from omni.data.tokenizer import Tokenizer
from omni.deploy.bundle import Bundle, read_bundle
from omni.deploy.recognizer import load_programs, recognize_frames, recognize_stream
from omni.inference.quantize import int8_dense_remainder
from omni.inference.sparse_linear import DENSE
from omni.inference.sparse_model import copy_sharing_kernels, sparse_inference_model, streaming_chunk_rows
from omni.inference.speed import StreamingDecoder, Utterance, eager_decoder, peak_memory_mb, time_streaming
from omni.runtime import set_threads
from omni.sparsity.export import compact_masks, compact_model_config, load_compact, read_compact
from omni.write_errors import explained_write_errors

EAGER_PATHS = ("dense", "sparse", "int8")
WER_DECODE = "greedy-full"  # batched: the whole split in seconds (the evaluation's streaming decode is per utterance)
MEMORY_KEYS = ("peak_rss_mb", "model_rss_mb")  # omni.inference.peak_memory's reply
ON_DEVICE_THREADS = 1


@dataclass
class DeviceMetricsPaths:
    export: Path  # the fp16 compact export
    manifest: Path  # the split whose first utterances are decoded
    feature_stats: Path
    tokenizer: Path
    out: Path  # the job's JSON record
    bundle: Path | None = None  # the runtime exports (omni.deploy), if the study makes them


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


def run_device_metrics_job(
    speed: Mapping[str, Any],
    logmel: Mapping[str, Any],
    arm: str,
    seed: int,
    tag: str,
    paths: DeviceMetricsPaths,
    threads: int,
) -> dict[str, Any]:
    """`speed` is omni.job_params.speed: utterances timed, timed calls per candidate kernel, whether
    to measure peak memory, the batch size of the WER decode."""
    set_threads(threads)
    payload = read_compact(paths.export)
    model_config = compact_model_config(payload)
    unit = (payload["unit"][0], payload["unit"][1])
    masks = compact_masks(payload)
    dense = load_compact(payload)
    bundle = read_bundle(paths.bundle) if paths.bundle is not None else None
    runtime_paths = {runtime_path(variant): variant for variant in bundle.variants} if bundle else {}
    frontend = Frontend(
        LogMel.from_section(logmel), load_feature_stats(paths.feature_stats), model_config["right_context_length"]
    )
    utterances = speed_utterances(paths.manifest, frontend, logmel["sample_rate"], speed["utterances"])
    torch.set_num_threads(ON_DEVICE_THREADS)  # kernels chosen for the on-device case
    sparse, layers = sparse_inference_model(
        dense, masks, unit, streaming_chunk_rows(model_config), speed["kernel_repeats"]
    )
    chosen = {layer.weight: layer.choice.kernel for layer in layers}
    models = dict(zip(EAGER_PATHS, (dense, sparse, int8_dense_remainder(copy_sharing_kernels(sparse, layers)))))
    kept = sum(int(mask.count_nonzero()) for mask in masks.values())
    total = sum(mask.numel() for mask in masks.values())
    record: dict[str, Any] = {
        "arm": arm,
        "seed": seed,
        "tag": tag,
        "sparsity": 1.0 - kept / total if total else 0.0,
        "export_bytes": paths.export.stat().st_size,
        "utterances": len(utterances),
        "audio_seconds": sum(u.audio_seconds for u in utterances),
        "job_threads": threads,
        "kernels": dict(Counter(layer.choice.kernel for layer in layers)),
        "sparse_linears": sum(layer.choice.kernel != DENSE for layer in layers),
        "masked_linears": len(layers),
    }
    if bundle is not None:  # else there are no runtime paths
        for name, variant in runtime_paths.items():
            record.update(file_sizes(bundle, variant, name))
    for label, count in (("t1", ON_DEVICE_THREADS), ("tjob", threads)):
        decoders: dict[str, StreamingDecoder] = {
            name: eager_decoder(model, model_config) for name, model in models.items()
        }
        if bundle is not None:
            decoders.update(
                {
                    name: runtime_decoder(bundle, load_programs(bundle, variant, count))
                    for name, variant in runtime_paths.items()
                }
            )
        measured = time_streaming(decoders, utterances, count)
        for name in decoders:
            record.update(measured[name].fields(f"{name}_{label}"))
        reference = (
            min(runtime_paths, key=lambda name: sum(measured[name].utterance_seconds)) if runtime_paths else "dense"
        )
        record[f"reference_{label}"] = reference
        for name in decoders:
            record[f"{name}_speedup_{label}"] = measured[name].speedup_over(measured[reference])
    for name in [path for path in decoders if path != "dense"]:  # utterances transcribed as the dense path does
        record[f"{name}_same_hypotheses"] = statistics.fmean(
            ours == theirs for ours, theirs in zip(measured[name].hypotheses, measured["dense"].hypotheses)
        )
    set_threads(threads)
    record.update(
        split_wers(
            {"fp16": dense, "int8": models["int8"]},
            model_config,
            frontend,
            logmel["sample_rate"],
            paths,
            speed["batch_size"],
        )
    )
    if bundle is not None:
        record.update(runtime_wers(bundle, runtime_paths, paths, logmel["sample_rate"], threads))
    names = [*EAGER_PATHS, *runtime_paths]
    record.update(
        peak_memory(paths, utterances, chosen, runtime_paths)
        if speed["peak_memory"]
        else {f"{name}_{key}": math.nan for name in names for key in MEMORY_KEYS}
    )
    write_json(paths.out, record)
    return record


def runtime_path(variant: str) -> str:
    """The record's name of a bundle variant: `onnx-int8` -> `onnx_int8`."""
    return variant.replace("-", "_")


def runtime_decoder(bundle: Bundle, programs: Mapping[str, Any]) -> StreamingDecoder:
    """A bundle's programs as a StreamingDecoder of the same features as the eager paths decode."""

    def decode(utterance: Utterance, chunk_seconds: list[float]) -> list[int]:
        recognizer = recognize_frames(bundle, dict(programs), utterance.feats[0, : utterance.length].numpy())
        chunk_seconds.extend(recognizer.chunk_seconds)
        return recognizer.tokens

    return decode


def file_sizes(bundle: Bundle, variant: str, name: str) -> dict[str, float]:
    """What a device installs (the programs' files) and downloads (gzip -9 of them), in bytes."""
    files = [bundle.program_file(variant, program) for program in bundle.variants[variant]]
    return {
        f"{name}_file_bytes": sum(path.stat().st_size for path in files),
        f"{name}_download_bytes": sum(len(gzip.compress(path.read_bytes(), compresslevel=9)) for path in files),
    }


def runtime_wers(
    bundle: Bundle, runtime_paths: Mapping[str, str], paths: DeviceMetricsPaths, sample_rate: int, threads: int
) -> dict[str, float]:
    """`<path>_wer` of each runtime path on the whole split: streamed from the audio through the bundle's own
    front end, a segment's samples at a time, as `transcribe` does."""
    manifest = read_manifest(paths.manifest)
    utterances = UtteranceSet(manifest, None, sample_rate, cache_audio=False)
    block = bundle.shape.segment_frames * bundle.shape.hop_length
    wers = {}
    for name, variant in runtime_paths.items():
        programs = load_programs(bundle, variant, threads)
        ids, references, hypotheses = [], [], []
        for index in range(len(utterances)):
            utterance = utterances.collate([index])
            wave = utterance.waveforms[0, : int(utterance.wave_lengths[0])].numpy()
            blocks = (wave[start : start + block] for start in range(0, len(wave), block))
            *_, (recognizer, _) = recognize_stream(bundle, programs, blocks)
            ids += utterance.utt_ids
            references += utterance.transcripts
            hypotheses.append(bundle.text(recognizer.tokens))
        wers[f"{name}_wer"] = summarize(score_hypotheses(ids, references, hypotheses))["wer"]
    return wers


def split_wers(
    models: Mapping[str, torch.nn.Module],
    model_config: ModelConfig,
    frontend: Frontend,
    sample_rate: int,
    paths: DeviceMetricsPaths,
    batch_size: int,
) -> dict[str, Any]:
    """`<name>_wer` of each model on the whole split (WER_DECODE), and the decode's name."""
    manifest = read_manifest(paths.manifest)
    utterances = UtteranceSet(manifest, None, sample_rate, cache_audio=True)
    tokenizer = Tokenizer(paths.tokenizer)
    wers: dict[str, Any] = {"wer_decode": WER_DECODE, "wer_utterances": len(manifest)}
    for name, model in models.items():
        _, summary = decode_split(
            model,
            model_config.copy(),
            frontend,
            utterances,
            tokenizer,
            WER_DECODE,
            None,
            batch_size,
            torch.device("cpu"),
            f"{name} export",
        )
        wers[f"{name}_wer"] = summary["wer"]
    return wers


def peak_memory(
    paths: DeviceMetricsPaths, utterances: list[Utterance], chosen: dict[str, str], runtime_paths: Mapping[str, str]
) -> dict[str, float]:
    """Each path's peak memory, decoding the same utterances on 1 thread in a process of its own."""
    record = {}
    with tempfile.TemporaryDirectory(dir=paths.out.parent) as workdir:
        features = Path(workdir) / "features.pt"
        with explained_write_errors(features):
            torch.save({"feats": [u.feats for u in utterances], "lengths": [u.length for u in utterances]}, features)
        requests = {
            name: {"export": str(paths.export), "kernels": kernels, "int8": int8}
            for name, kernels, int8 in zip(EAGER_PATHS, (None, chosen, chosen), (False, False, True))
        }
        requests.update(
            {name: {"bundle": str(paths.bundle), "variant": variant} for name, variant in runtime_paths.items()}
        )
        for name, request in requests.items():
            memory = peak_memory_mb({**request, "features": str(features), "threads": ON_DEVICE_THREADS}, Path(workdir))
            record.update({f"{name}_{key}": memory[key] for key in MEMORY_KEYS})
    return record
