"""Peak memory of one inference path, in a process of its own (run by omni.inference.speed).

    python -m omni.inference.peak_memory request.json

The request names the utterances' features (a torch file of {"feats": [...], "lengths": [...]}), the threads,
and either an export (what a device loads) with the kernel of each masked linear (null: the dense path) and
whether the remaining dense linears run in int8 (the eager paths), or an exported bundle and its variant (a
runtime path: ONNX Runtime or ExecuTorch). The process loads the features, notes its resident set and restarts
its peak from there, then loads the model, builds the path and decodes every utterance streaming; it prints
one JSON line: the process's peak resident set and how far the model took it above where it stood (loading
included: a device pays for it too).
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import torch

from omni.asr.decode import StreamingChunks, greedy_streaming
from omni.asr.model import blank_id
from omni.inference.quantize import int8_dense_remainder
from omni.inference.sparse_model import sparse_inference_model, streaming_chunk_rows
from omni.sparsity.export import compact_masks, compact_model_config, load_compact, read_compact

KIB_PER_MB = 1024
PROC_STATUS = Path("/proc/self/status")
PROC_CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_PEAK = "5"  # Linux: resets the process's peak resident set (VmHWM) to its current size


def resident_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) from /proc on Linux; elsewhere the peak getrusage reports
    (KiB on Linux, bytes on macOS)."""
    if PROC_STATUS.exists():
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / KIB_PER_MB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / KIB_PER_MB / (KIB_PER_MB if sys.platform == "darwin" else 1)


def reset_peak() -> None:
    """Start the peak from the current size, so an earlier transient (imports) does not hide the model's."""
    if PROC_CLEAR_REFS.exists():
        PROC_CLEAR_REFS.write_text(RESET_PEAK)


def main(request_path: str) -> None:
    request = json.loads(Path(request_path).read_text())
    torch.set_num_threads(request["threads"])
    features = torch.load(request["features"], weights_only=True)
    before = resident_mb("VmRSS")
    reset_peak()
    if "variant" in request:
        runtime_path(request, features)
    else:
        eager_path(request, features)
    peak = resident_mb("VmHWM")
    print(json.dumps({"peak_rss_mb": peak, "model_rss_mb": peak - before}))


def runtime_path(request: dict, features: dict) -> None:
    """An exported bundle's programs in their runtime (omni.deploy), decoding the features."""
    from omni.deploy.bundle import read_bundle
    from omni.deploy.recognizer import load_programs, recognize_frames

    bundle = read_bundle(request["bundle"])
    programs = load_programs(bundle, request["variant"], request["threads"])
    for feats, length in zip(features["feats"], features["lengths"]):
        recognize_frames(bundle, programs, feats[0, : int(length)].numpy())


def eager_path(request: dict, features: dict) -> None:
    payload = read_compact(request["export"])
    model = load_compact(payload)
    model_config = compact_model_config(payload)
    if request["kernels"] is not None:
        unit = (payload["unit"][0], payload["unit"][1])
        model, _ = sparse_inference_model(
            model,
            compact_masks(payload),
            unit,
            streaming_chunk_rows(model_config),
            repeats=0,
            chosen=request["kernels"],
            copy_model=False,
        )
    del payload
    if request["int8"]:
        model = int8_dense_remainder(model)
    chunks = StreamingChunks(model_config["segment_length"], model_config["right_context_length"])
    for feats, length in zip(features["feats"], features["lengths"]):
        greedy_streaming(model, feats, int(length), blank_id(model_config), chunks)


if __name__ == "__main__":
    main(sys.argv[1])
