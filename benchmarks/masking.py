"""Cost of hard masks during training: dense vs our masks vs torch.nn.utils.prune hooks.

Pruned models train with masks on every step, so the masking must cost little next to the dense step (target:
masked/dense <= 1.10) and no more than PyTorch's own pruning hooks (target: masked/prune-hooked <= 1.0).
"masked" is the individual arm's `ZeroedWeightMasks` (zeroed weights, gradient hook, re-zero after the
optimizer step); "parametrized" is the supernet's `MaskedParameters` (weight * mask in every forward, like the
prune hooks). Every variant trains the same tiny RNN-T from the same weights on the same fixed batches with
RNN-T loss and AdamW; variants are interleaved round by round (in a rotating order) so machine noise hits all
of them alike; the verdicts use the median of per-round ratios.

    .venv/bin/python benchmarks/masking.py [--config config.yaml] [--steps N]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchaudio
from torch import Tensor, nn
from torch.nn.utils import prune

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omni import job_params  # noqa: E402
from omni.asr.model import blank_id, build_model, model_config_from  # noqa: E402
from omni.config import load_config  # noqa: E402
from omni.jobs.specs import mask_spec  # noqa: E402
from omni.sparsity.masking import MaskedParameters, ZeroedWeightMasks  # noqa: E402
from omni.sparsity.masks import UNSTRUCTURED, masks_at, prunable_parameter_names, rank_layers  # noqa: E402

MASKED_OVERHEAD_TARGET = 1.10
VERSUS_PRUNE_TARGET = 1.0
MS_PER_S = 1000.0


@dataclass(frozen=True)
class Batch:
    features: Tensor  # [B, T + right_context, n_mels]
    feature_lengths: Tensor  # unpadded T
    predictor_input: Tensor  # blank-prepended targets: the predictor sees U + 1 symbols
    predictor_lengths: Tensor
    targets: Tensor
    target_lengths: Tensor


@dataclass
class Variant:
    name: str
    model: nn.Module
    optimizer: torch.optim.Optimizer
    after_step: Callable[[], None]
    times: list[float]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--steps", type=int, default=20, help="measured steps per variant")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured steps per variant first")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--batch", type=int, default=8, help="utterances per batch")
    parser.add_argument("--frames", type=int, default=400, help="input frames (10 ms) per utterance")
    parser.add_argument("--target-length", type=int, default=30, help="target symbols per utterance")
    parser.add_argument("--batches", type=int, default=4, help="distinct fixed batches, cycled")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--for-loop-adamw",
        action="store_true",
        help="the default for-loop AdamW instead of omni/asr/trainer.py's AdamW(fused=True)",
    )
    return parser.parse_args()


def make_batch(
    args: argparse.Namespace, n_mels: int, right_context: int, blank: int, generator: torch.Generator
) -> Batch:
    """Pad by the right context and pass UNPADDED lengths (see DESIGN.md facts)."""
    features = torch.randn(args.batch, args.frames + right_context, n_mels, generator=generator)
    targets = torch.randint(0, blank, (args.batch, args.target_length), generator=generator)
    lengths = torch.full((args.batch,), args.frames, dtype=torch.int64)
    target_lengths = torch.full((args.batch,), args.target_length, dtype=torch.int64)
    blanks = torch.full((args.batch, 1), blank, dtype=targets.dtype)
    return Batch(features, lengths, torch.cat([blanks, targets], dim=1), target_lengths + 1, targets, target_lengths)


def train_step(variant: Variant, batch: Batch, blank: int) -> float:
    """One forward + backward + AdamW step; returns its wall time in seconds."""
    start = time.perf_counter()
    variant.optimizer.zero_grad(set_to_none=True)
    logits, logit_lengths, _, _ = variant.model(
        batch.features, batch.feature_lengths, batch.predictor_input, batch.predictor_lengths
    )
    loss = torchaudio.functional.rnnt_loss(
        logits, batch.targets.int(), logit_lengths.int(), batch.target_lengths.int(), blank=blank
    )
    loss.backward()
    variant.optimizer.step()
    variant.after_step()
    return time.perf_counter() - start


# A setup installs a masking scheme on a model and returns what runs after each optimizer step.
Setup = Callable[[nn.Module], Callable[[], None]]


def nothing() -> None:
    return None


def no_masks(model: nn.Module) -> Callable[[], None]:
    """The dense baseline trains the model as built."""
    return nothing


def with_zeroed_weights(masks: dict[str, Tensor]) -> Setup:
    def apply(model: nn.Module) -> Callable[[], None]:
        return ZeroedWeightMasks(model, masks).enforce

    return apply


def with_parametrization(mask_dtype: torch.dtype | None, masks: dict[str, Tensor]) -> Setup:
    def apply(model: nn.Module) -> Callable[[], None]:
        MaskedParameters(model, masks, mask_dtype=mask_dtype)
        return nothing

    return apply


def with_prune_hooks(names: list[str], sparsity: float) -> Setup:
    def apply(model: nn.Module) -> Callable[[], None]:
        for name in names:
            module_path, _, attr = name.rpartition(".")
            prune.l1_unstructured(model.get_submodule(module_path), attr, amount=sparsity)
        return nothing

    return apply


def build_variants(
    dense: nn.Module, setups: dict[str, Setup], lr: float, weight_decay: float, fused: bool
) -> list[Variant]:
    """Masks/hooks go on first, then the optimizer is created (the MaskedParameters contract)."""
    variants = []
    for name, setup in setups.items():
        model = copy.deepcopy(dense)
        after_step = setup(model)
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused)
        variants.append(Variant(name, model, optimizer, after_step, []))
    return variants


def run_rounds(variants: list[Variant], batches: list[Batch], blank: int, warmup: int, steps: int) -> None:
    for step in range(warmup + steps):
        batch = batches[step % len(batches)]
        shift = step % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            elapsed = train_step(variant, batch, blank)
            if step >= warmup:
                variant.times.append(elapsed)


def paired_ratio(numerator: Variant, denominator: Variant) -> float:
    """Median of per-round ratios: both steps of a round ran back to back, so load that drifts
    over minutes (other jobs on the machine) cancels, unlike in a ratio of overall medians."""
    return statistics.median(a / b for a, b in zip(numerator.times, denominator.times))


def verdict(name: str, ratio: float, target: float) -> str:
    return f"{name:<22}= {ratio:.3f}  (target <= {target:.2f}: {'met' if ratio <= target else 'NOT met'})"


def report(variants: list[Variant], args: argparse.Namespace) -> None:
    by_name = {v.name: v for v in variants}
    dense = by_name["dense"]
    print(
        f"\nmasking cost: {args.steps} steps/variant, {torch.get_num_threads()} thread(s), "
        f"batch {args.batch} x {args.frames} frames, {args.target_length} targets, sparsity {args.sparsity}, "
        f"AdamW {'for-loop' if args.for_loop_adamw else 'fused (as omni/asr/trainer.py)'}"
    )
    print(f"{'variant':<22}{'median ms':>11}{'min ms':>9}{'max ms':>9}{'median/dense':>14}{'paired/dense':>14}")
    for v in variants:
        median = statistics.median(v.times)
        print(
            f"{v.name:<22}{median * MS_PER_S:>11.1f}{min(v.times) * MS_PER_S:>9.1f}{max(v.times) * MS_PER_S:>9.1f}"
            f"{median / statistics.median(dense.times):>14.3f}{paired_ratio(v, dense):>14.3f}"
        )
    print("\npaired per-round medians:")
    print(verdict("masked / dense", paired_ratio(by_name["masked"], dense), MASKED_OVERHEAD_TARGET))
    print(
        verdict("masked / prune-hooked", paired_ratio(by_name["masked"], by_name["prune-hooked"]), VERSUS_PRUNE_TARGET)
    )
    print(
        verdict(
            "parametrized / prune", paired_ratio(by_name["parametrized"], by_name["prune-hooked"]), VERSUS_PRUNE_TARGET
        )
    )


def study_setup(args: argparse.Namespace) -> tuple[dict, dict, int]:
    """What every benchmark starts from: threads and seed from its arguments, the config, and the
    chosen preset's model config (vocabulary + blank) with its blank id."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = load_config(args.config)
    model_config = model_config_from(job_params.model(config), num_symbols=config["tokenizer"]["vocab_size"] + 1)
    return config, model_config, blank_id(model_config)


def main() -> None:
    args = parse_args()
    config, model_config, blank = study_setup(args)
    dense = build_model(model_config)
    names = prunable_parameter_names(dense, mask_spec(job_params.masks(config)))
    masks = masks_at(rank_layers(dense, names, UNSTRUCTURED, config["sparsity"]["block_shape"]), args.sparsity)
    generator = torch.Generator().manual_seed(args.seed)
    batches = [
        make_batch(args, model_config["input_dim"], model_config["right_context_length"], blank, generator)
        for _ in range(args.batches)
    ]
    setups = {
        "dense": no_masks,
        "masked": with_zeroed_weights(masks),
        "parametrized": with_parametrization(None, masks),
        "parametrized (bool)": with_parametrization(torch.bool, masks),
        "prune-hooked": with_prune_hooks(names, args.sparsity),
    }
    variants = build_variants(
        dense, setups, config["train"]["lr"], config["train"]["weight_decay"], fused=not args.for_loop_adamw
    )
    run_rounds(variants, batches, blank, args.warmup, args.steps)
    report(variants, args)


if __name__ == "__main__":
    main()
