"""Cost of supernet training per sampled sub-network, against a dense training step.

A supernet step runs one forward/backward per sampled sub-network plus the mask work: one
ranking (sort) per layer every `omni.mask_update_every` steps and, per sub-network, masks at
its level copied into the parametrization buffers. With the ranking amortised, a step per
sub-network should cost about one dense step (target <= 1.10). Both variants use the real
strategies of omni/asr/trainer.py (GradientStrategy, SupernetGradients) on the same fixed batches,
interleaved round by round; ratios are medians of per-round ratios.

    .venv/bin/python benchmarks/supernet.py [--config config.yaml] [--steps N]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch
import torchaudio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from masking import Batch, make_batch, study_setup  # noqa: E402  (benchmarks/ is this script's folder)

from omni import job_params  # noqa: E402
from omni.asr.model import build_model  # noqa: E402
from omni.asr.trainer import GradientStrategy, PlainLoss  # noqa: E402
from omni.jobs.specs import mask_spec, supernet_spec  # noqa: E402
from omni.sparsity.masks import masks_at, rank_layers  # noqa: E402
from omni.sparsity.supernet import LevelSampler, SupernetGradients  # noqa: E402

PER_SUBNET_TARGET = 1.10
MS_PER_S = 1000.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--steps", type=int, default=20, help="measured steps per variant")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--target-length", type=int, default=30)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def loss_on(model: torch.nn.Module, batch: Batch, blank: int) -> torch.Tensor:
    logits, logit_lengths, _, _ = model(
        batch.features, batch.feature_lengths, batch.predictor_input, batch.predictor_lengths
    )
    return torchaudio.functional.rnnt_loss(
        logits, batch.targets.int(), logit_lengths.int(), batch.target_lengths.int(), blank=blank
    )


def timed_step(strategy, model, optimizer, step: int, batch: Batch, blank: int) -> float:
    """What Trainer.run does per step (minus data loading and logging)."""
    start = time.perf_counter()
    strategy.prepare(step)
    optimizer.zero_grad(set_to_none=True)
    strategy.accumulate(step, PlainLoss(lambda: loss_on(model, batch, blank)))
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    return time.perf_counter() - start


def mask_building_seconds(supernet: SupernetGradients, levels: list[float], repeats: int) -> tuple[float, float]:
    """(one ranking of every layer, masks at one level + copy into the buffers)."""
    start = time.perf_counter()
    for _ in range(repeats):
        rankings = rank_layers(supernet.model, supernet.names, supernet.granularity, supernet.block_shape)
    rank_s = (time.perf_counter() - start) / repeats
    start = time.perf_counter()
    for index in range(repeats):
        supernet.masked.set_masks(masks_at(rankings, levels[index % len(levels)]))
    return rank_s, (time.perf_counter() - start) / repeats


def main() -> None:
    args = parse_args()
    config, model_config, blank = study_setup(args)
    base = build_model(model_config).train()
    generator = torch.Generator().manual_seed(args.seed)
    batches = [
        make_batch(args, model_config["input_dim"], model_config["right_context_length"], blank, generator)
        for _ in range(args.batches)
    ]
    omni_cfg = config["omni"]
    spec = dataclasses.replace(supernet_spec(job_params.supernet(config)), warmup_fraction=0.0)
    sampler = LevelSampler.for_steps(spec, args.steps)

    dense_model, omni_model = copy.deepcopy(base), copy.deepcopy(base)
    dense = GradientStrategy(dense_model)
    masks = mask_spec(job_params.masks(config))
    supernet = SupernetGradients(omni_model, masks, sampler, omni_cfg["mask_update_every"], args.seed)
    lr, decay = config["train"]["finetune_lr"], config["train"]["weight_decay"]
    variants = {
        "dense": (dense, dense_model, torch.optim.AdamW(dense_model.parameters(), lr, weight_decay=decay, fused=True)),
        "supernet": (
            supernet,
            omni_model,
            torch.optim.AdamW(omni_model.parameters(), lr, weight_decay=decay, fused=True),
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for step in range(args.warmup + args.steps):
        batch = batches[step % len(batches)]
        order = list(variants) if step % 2 == 0 else list(reversed(variants))
        for name in order:
            strategy, model, optimizer = variants[name]
            elapsed = timed_step(strategy, model, optimizer, step, batch, blank)
            if step >= args.warmup:
                times[name].append(elapsed)

    passes = sampler.passes_per_step()
    per_subnet = statistics.median(s / passes / d for s, d in zip(times["supernet"], times["dense"]))
    rank_s, level_s = mask_building_seconds(supernet, sorted(config["sparsity"]["levels"]), repeats=5)
    supernet_step = statistics.median(times["supernet"])
    mask_per_step = rank_s / omni_cfg["mask_update_every"] + passes * level_s
    print(
        f"supernet cost: {args.steps} steps/variant, {torch.get_num_threads()} thread(s), batch {args.batch} x "
        f"{args.frames} frames, sampling '{omni_cfg['sampling']}' = {passes} sub-network(s)/step, "
        f"ranking every {omni_cfg['mask_update_every']} steps"
    )
    print(f"  dense step (median)            {statistics.median(times['dense']) * MS_PER_S:9.1f} ms")
    print(f"  supernet step (median)         {supernet_step * MS_PER_S:9.1f} ms")
    print(f"  ranking all layers (one sort)  {rank_s * MS_PER_S:9.1f} ms, every {omni_cfg['mask_update_every']} steps")
    print(f"  masks at one level + copy      {level_s * MS_PER_S:9.1f} ms, {passes} per step")
    verdict = "met" if per_subnet <= PER_SUBNET_TARGET else "NOT met"
    print(
        f"supernet step per sub-network / dense step = {per_subnet:.3f}  (target <= {PER_SUBNET_TARGET:.2f}: {verdict})"
    )
    print(f"mask building / supernet step               = {mask_per_step / supernet_step:.3f}")


if __name__ == "__main__":
    main()
