"""Data-parallel training on a CPU: one process with all the threads vs `train.cpu_processes`
processes (torchrun + DistributedDataParallel on gloo) sharing them, on the study's own data and model.

Both train the dense job's first steps from scratch (clean audio, the length curriculum) with the
config's batch size per process, one after the other, and the script prints each one's step time and
audio seconds per wall second from its cost record, and their ratio. Run it on an otherwise idle machine:

    .venv/bin/python benchmarks/data_parallel.py [--config config.yaml] [--data results/data] [--steps 60]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omni import job_params  # noqa: E402
from omni.config import load_config  # noqa: E402
from omni.jobs.training import JobSpec, TrainingSetup, TrainPaths, run_training_job  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--data", default="results/data", help="a study's data folder (make run builds it)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2, help="the job's threads, shared by its processes")
    return parser.parse_args()


def measure(config: dict, data: Path, steps: int, threads: int, processes: int, folder: Path) -> dict:
    config = json.loads(json.dumps(config))
    config["train"].update(cpu_processes=processes, checkpoint_every=steps, log_every=steps)
    setup = TrainingSetup(training=job_params.training(config, "dense"), logmel=job_params.logmel(config),
                          augmentation=job_params.augmentation(config), model=job_params.model(config))
    paths = TrainPaths(manifest=data / "manifests" / "train.tsv", feature_stats=data / "feature_stats.json",
                       tokenizer=data / "tokenizer.model", model_out=folder / "model.pt",
                       log_out=folder / "train_log.csv", cost_out=folder / "cost.json",
                       checkpoint_dir=folder / "checkpoints")
    run_training_job(setup, JobSpec("train_dense", "dense", None, steps), paths, threads)
    return json.loads(paths.cost_out.read_text())


def main() -> None:
    args = parse_args()
    config = load_config(args.config)
    data = Path(args.data)
    processes = config["train"]["cpu_processes"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (1, processes):
            results[count] = measure(config, data, args.steps, args.threads, count, Path(tmp) / str(count))
    print(f"\ndense job, {args.steps} steps from scratch, {args.threads} threads, batch_frames "
          f"{config['train']['batch_frames']} per process, preset {config['model']['preset']}")
    for count, cost in results.items():
        step_ms = 1000 * cost["wall_s"] / cost["steps"]
        print(f"{count} process(es): {step_ms:7.1f} ms per step, {3600 * cost['audio_hours'] / cost['wall_s']:6.1f} "
              f"audio s per s")
    one, many = results[1], results[processes]
    speed = (many["audio_hours"] / many["wall_s"]) / (one["audio_hours"] / one["wall_s"])
    print(f"audio per second, {processes} processes / 1 process = {speed:.2f}x "
          f"(step time {many['wall_s'] / one['wall_s']:.2f}x for {processes}x the audio per step)")


if __name__ == "__main__":
    main()
