"""Per-chunk latency of a study's TRAINED models in their runtime bundles, paired in one process.

device_metrics times each model in its own job, so two models' ratio carries whatever else the machine did
in each job's minutes; this times them together: every model's bundle (`export_runtimes`' deploy/ folder) on
every chosen variant decodes the same test utterances greedily, chunk by chunk, the decoders taking turns
utterance by utterance (omni.inference.speed.time_streaming), 1 thread as a device would. Unlike
benchmarks/runtimes.py (random weights, a fixed amount of search per frame) the search is the real argmax
one, so a model that emits more symbols pays for them. Prints per model and variant the mean and p95 chunk
time and the ratio to the first model (the dense one) in the same variant and in its fastest variant.

    .venv/bin/python benchmarks/trained_runtimes.py [--results results] [--utterances 60]
        [--models dense/seed1234/dense individual-structured/seed1237/s0.8 ...] [--variants executorch-int8 onnx-int8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omni import job_params  # noqa: E402
from omni.asr.frontend import Frontend  # noqa: E402
from omni.atomic import load_torch  # noqa: E402
from omni.config import load_config  # noqa: E402
from omni.data.features import LogMel, load_feature_stats  # noqa: E402
from omni.deploy.bundle import read_bundle  # noqa: E402
from omni.deploy.recognizer import load_programs  # noqa: E402
from omni.inference.speed import time_streaming  # noqa: E402
from omni.jobs.device_metrics import runtime_decoder, speed_utterances  # noqa: E402

DEFAULT_MODELS = [
    "dense/seed1234/dense",
    "individual/seed1237/s0.8",
    "individual-structured/seed1237/s0.8",
    "omni-structured/seed1237/s0.8",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--results", default="results")
    parser.add_argument("--split", default="test-other")
    parser.add_argument("--utterances", type=int, default=60)
    parser.add_argument(
        "--models", nargs="+", default=DEFAULT_MODELS, help="<arm>/seed<N>/<tag>; the first is the peer"
    )
    parser.add_argument("--variants", nargs="+", default=["executorch-int8", "onnx-int8"])
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    results = Path(args.results)
    logmel = job_params.logmel(load_config(Path(args.config)))
    folders = {name: results / "models" / name for name in args.models}
    model_config = load_torch(folders[args.models[0]] / "model.pt")["model_config"]
    frontend = Frontend(
        LogMel.from_section(logmel),
        load_feature_stats(results / "data" / "feature_stats.json"),
        model_config["right_context_length"],
    )
    utterances = speed_utterances(
        results / "data" / "manifests" / f"{args.split}.tsv", frontend, logmel["sample_rate"], args.utterances
    )
    torch.set_num_threads(1)
    decoders = {}
    for name, folder in folders.items():
        bundle = read_bundle(folder / "deploy")
        for variant in args.variants:
            decoders[(name, variant)] = runtime_decoder(bundle, load_programs(bundle, variant, 1))
    measured = time_streaming(decoders, utterances, 1)
    peer = {variant: measured[(args.models[0], variant)].chunk_ms_mean for variant in args.variants}
    print(f"{len(utterances)} {args.split} utterances, 1 thread; x = the peer's ms / this ms (> 1 is faster)")
    print(f"{'model':42s} {'variant':16s} {'ms/chunk':>9s} {'p95':>7s} {'x peer, same':>13s} {'x peer, best':>13s}")
    for (name, variant), speed in measured.items():
        print(
            f"{name:42s} {variant:16s} {speed.chunk_ms_mean:9.3f} {speed.chunk_ms_p95:7.3f} "
            f"{peer[variant] / speed.chunk_ms_mean:13.2f} {min(peer.values()) / speed.chunk_ms_mean:13.2f}"
        )


if __name__ == "__main__":
    main()
