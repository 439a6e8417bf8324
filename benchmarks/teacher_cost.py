"""What a frozen teacher's forward pass costs next to one training pass: `distill.teacher_forward_cost`.

The supernet's budget counts training passes (forward + loss + backward of a sub-network); a dense
teacher adds one forward pass per step, which the budget counts at this fraction of a pass
(omni/sparsity/budget.py), so a supernet with a teacher costs what an individual job with the
same teacher costs. Measured here as the pipeline trains: the student is the preset's model with
the supernet's masks (MaskedParameters at --sparsity), its pass is forward + RNN-T loss + lattice
KL + backward + AdamW step; the teacher is the same dense model, forward only, no autograd.
Both are timed back to back per round on the same fixed batch; the figure is the median of the
per-round ratios. A training job's process runs on one thread (2 processes share 2 cores).

    .venv/bin/python benchmarks/teacher_cost.py [--config config.yaml] [--steps N]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
import torchaudio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from masking import Batch, make_batch, study_setup  # noqa: E402  (benchmarks/ is this script's folder)

from omni import job_params  # noqa: E402
from omni.asr.distill import lattice_kl  # noqa: E402
from omni.asr.model import build_model  # noqa: E402
from omni.jobs.specs import mask_spec  # noqa: E402
from omni.sparsity.masking import MaskedParameters  # noqa: E402
from omni.sparsity.masks import UNSTRUCTURED, masks_at, prunable_parameter_names, rank_layers  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--steps", type=int, default=30, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sparsity", type=float, default=0.7, help="the student's masks")
    parser.add_argument("--batch", type=int, default=4, help="utterances per batch (train.batch_frames 1000 ~ 4 x 250)")
    parser.add_argument("--frames", type=int, default=250, help="input frames (10 ms) per utterance")
    parser.add_argument("--target-length", type=int, default=35, help="target symbols per utterance")
    parser.add_argument("--form", default="full", help="distillation form (distill.form)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def logits_of(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    logits, logit_lengths, _, _ = model(
        batch.features, batch.feature_lengths, batch.predictor_input, batch.predictor_lengths
    )
    return logits, logit_lengths


def teacher_forward(teacher: torch.nn.Module, batch: Batch) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    with torch.no_grad():
        logits, _ = logits_of(teacher, batch)
    return time.perf_counter() - start, logits


def student_pass(
    student: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    teacher_logits: torch.Tensor,
    blank: int,
    form: str,
) -> float:
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    logits, logit_lengths = logits_of(student, batch)
    loss = torchaudio.functional.rnnt_loss(
        logits, batch.targets.int(), logit_lengths.int(), batch.target_lengths.int(), blank=blank
    )
    loss = loss + lattice_kl(logits, teacher_logits, logit_lengths, batch.targets, batch.target_lengths, blank, form)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    config, model_config, blank = study_setup(args)
    teacher = build_model(model_config).eval().requires_grad_(False)
    student = copy.deepcopy(teacher).train().requires_grad_(True)
    names = prunable_parameter_names(student, mask_spec(job_params.masks(config)))
    MaskedParameters(
        student, masks_at(rank_layers(student, names, UNSTRUCTURED, config["sparsity"]["block_shape"]), args.sparsity)
    )
    optimizer = torch.optim.AdamW(student.parameters(), lr=config["train"]["finetune_lr"], fused=True)
    batch = make_batch(
        args,
        model_config["input_dim"],
        model_config["right_context_length"],
        blank,
        torch.Generator().manual_seed(args.seed),
    )
    forward_times, pass_times = [], []
    for round_index in range(args.warmup + args.steps):
        forward_s, teacher_logits = teacher_forward(teacher, batch)
        pass_s = student_pass(student, optimizer, batch, teacher_logits, blank, args.form)
        if round_index >= args.warmup:
            forward_times.append(forward_s)
            pass_times.append(pass_s)
    ratio = statistics.median(f / p for f, p in zip(forward_times, pass_times))
    print(
        f"preset {config['model']['preset']}, {torch.get_num_threads()} thread(s), batch {args.batch} x "
        f"{args.frames} frames, {args.target_length} targets, student sparsity {args.sparsity}, "
        f"KL form {args.form}, {args.steps} rounds"
    )
    print(f"teacher forward   median {statistics.median(forward_times) * 1e3:8.1f} ms")
    print(f"training pass     median {statistics.median(pass_times) * 1e3:8.1f} ms")
    print(
        f"teacher forward / training pass (median of per-round ratios) = {ratio:.3f}  -> distill.teacher_forward_cost"
    )


if __name__ == "__main__":
    main()
