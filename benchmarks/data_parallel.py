"""Data-parallel training on a CPU: one process with all the threads vs `train.cpu_processes`
processes (torchrun + DistributedDataParallel on gloo) sharing them, on the study's own data and model.

Both train the dense job's first steps from scratch (clean audio, the length curriculum) with the
config's batch size per process, one after the other. The script prints each one's steady step time
and audio seconds per second from its training log (after the first WARMUP_STEPS steps), the job's
start-up (its cost record's wall time minus the training loop's), and the ratio. Run it on an
otherwise idle machine:

    .venv/bin/python benchmarks/data_parallel.py [--config config.yaml] [--data results/data] [--steps 60]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omni import job_params  # noqa: E402
from omni.config import load_config  # noqa: E402
from omni.jobs.specs import DenseJob, training_spec  # noqa: E402
from omni.jobs.training import TrainingSetup, TrainPaths, run_training_job  # noqa: E402

WARMUP_STEPS = 20  # steps left out of the steady step time (allocator and cache warm-up)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--data", default="results/data", help="a study's data folder (make run builds it)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2, help="the job's threads, shared by its processes")
    return parser.parse_args()


def measure(config: dict, data: Path, steps: int, threads: int, processes: int, folder: Path) -> dict:
    config = json.loads(json.dumps(config))
    config["train"].update(cpu_processes=processes, checkpoint_every=steps, log_every=1)
    setup = TrainingSetup(
        training=training_spec(job_params.training(config, "dense", config["seed"])),
        logmel=job_params.logmel(config),
        augmentation=job_params.augmentation(config),
        model=job_params.model(config),
    )
    paths = TrainPaths(
        manifest=data / "manifests" / "train.tsv",
        feature_stats=data / "feature_stats.json",
        tokenizer=data / "tokenizer.model",
        model_out=folder / "model.pt",
        log_out=folder / "train_log.csv",
        cost_out=folder / "cost.json",
        checkpoint_dir=folder / "checkpoints",
    )
    run_training_job(setup, DenseJob("dense", steps), paths, threads)
    log = pd.read_csv(paths.log_out).set_index("step")
    steady = log.loc[WARMUP_STEPS:]
    cost = json.loads(paths.cost_out.read_text())
    return {
        "step_s": (steady["wall_s"].iloc[-1] - steady["wall_s"].iloc[0]) / (len(steady) - 1),
        "audio_per_s": (steady["audio_seconds"].iloc[-1] - steady["audio_seconds"].iloc[0])
        / (steady["wall_s"].iloc[-1] - steady["wall_s"].iloc[0]),
        "startup_s": cost["wall_s"] - log["wall_s"].iloc[-1],
    }


def main() -> None:
    args = parse_args()
    config = load_config(args.config)
    data = Path(args.data)
    processes = config["train"]["cpu_processes"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (1, processes):
            results[count] = measure(config, data, args.steps, args.threads, count, Path(tmp) / str(count))
    print(
        f"\ndense job, {args.steps} steps from scratch, {args.threads} threads, batch_frames "
        f"{config['train']['batch_frames']} per process, preset {config['model']['preset']}"
    )
    for count, measured in results.items():
        print(
            f"{count} process(es): {1000 * measured['step_s']:7.1f} ms per step, "
            f"{measured['audio_per_s']:6.1f} audio s per s (steps {WARMUP_STEPS}-{args.steps}), "
            f"start-up {measured['startup_s']:.1f} s"
        )
    one, many = results[1], results[processes]
    print(
        f"audio per second, {processes} processes / 1 process = {many['audio_per_s'] / one['audio_per_s']:.2f}x "
        f"(step time {many['step_s'] / one['step_s']:.2f}x for {processes}x the audio per step)"
    )


if __name__ == "__main__":
    main()
