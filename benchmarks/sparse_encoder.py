"""Does sparsity buy speed? Dense vs the sparse inference path per streaming chunk, on 1 thread.

For each model preset (`tiny`: the default study's, `base`: the LibriSpeech study's, with their
vocabularies), each pruning unit (unstructured, square blocks for BSR, tall blocks for the banded
kernel) and each sparsity, a model with random weights is pruned by magnitude (the encoder's
attention and feed-forward weights, as `sparsity.prunable`), and omni.inference builds its sparse
path: every masked linear on the kernel that times fastest here for one streaming chunk's rows
(dense unless clearly faster). Timed per chunk, steady state (left context filled), dense and
sparse interleaved round by round so machine noise hits both alike:
  linears   the pruned linears alone (sum of the per-layer medians of the chosen kernel vs dense)
  encoder   transcribe_streaming of one chunk (segment + look-ahead)
  model     the encoder + greedy search over the chunk's frames (predictor and joiner stay dense). With
            random weights the search emits the most symbols a frame allows (5), far more than a
            trained model; so it is timed twice: as initialised (the search's most) and with the
            joiner's blank bias raised until it never emits (its least: one joiner call a frame).
            A trained model lies between; the two ratios bound its whole-model speed-up.
Ratios are dense time / sparse time (> 1: the sparse path is faster). The break-even sparsity of a
unit is the lowest measured level where the whole encoder is clearly faster (>= BREAK_EVEN).

    .venv/bin/python benchmarks/sparse_encoder.py [--presets tiny base] [--levels 0.5 0.7 0.8 0.9 0.95]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import torch
import yaml
from snakemake.utils import update_config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omni import job_params  # noqa: E402
from omni.asr.decode import greedy_consume, greedy_start  # noqa: E402
from omni.asr.model import blank_id, build_model, model_config_from  # noqa: E402
from omni.config import read_yaml, validate_config  # noqa: E402
from omni.inference.sparse_linear import DENSE  # noqa: E402
from omni.inference.sparse_model import sparse_inference_model, streaming_chunk_rows  # noqa: E402
from omni.jobs.specs import mask_spec  # noqa: E402
from omni.sparsity.masks import apply_masks_, masks_at, prunable_parameter_names, rank_layers  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PRESET_CONFIGS = {"tiny": [], "base": ["configs/librispeech.yaml"]}  # layered over config.yaml
UNITS = {
    "unstructured": ("unstructured", [1, 1]),
    "block 8x8": ("block", [8, 8]),
    "block 16x1": ("block", [16, 1]),
    "block 32x1": ("block", [32, 1]),
}
FILLED_CHUNKS = 8  # chunks run before timing, so the attention sees a full left context
SILENT_BLANK_BIAS = 50.0  # added to the joiner's blank logit: random weights then never emit
BREAK_EVEN = 1.05  # "faster" beyond a few % of timing noise


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(PRESET_CONFIGS), choices=list(PRESET_CONFIGS))
    parser.add_argument("--units", nargs="+", default=list(UNITS), choices=list(UNITS))
    parser.add_argument("--levels", nargs="+", type=float, default=[0.5, 0.7, 0.8, 0.9, 0.95])
    parser.add_argument("--rounds", type=int, default=30, help="timed chunks per model")
    parser.add_argument("--kernel-repeats", type=int, default=30, help="timed calls per candidate kernel")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def preset_config(preset: str) -> dict:
    config = read_yaml(REPO / "config.yaml")
    for path in PRESET_CONFIGS[preset]:
        update_config(config, yaml.safe_load((REPO / path).read_text()))  # as --configfile layers them
    return validate_config(config)


class ChunkRunner:
    """One model's streaming state over a fixed sequence of chunks: each call runs the next chunk."""

    def __init__(self, model: torch.nn.Module, model_config: dict, chunk: torch.Tensor, decode: bool) -> None:
        self.model, self.chunk, self.decode = model, chunk, decode
        self.blank = blank_id(model_config)
        self.length = torch.tensor([chunk.size(1)])
        self.encoder_state = None
        self.search = greedy_start(model, 1, self.blank, chunk.device)

    @torch.inference_mode()
    def __call__(self) -> float:
        start = time.perf_counter()
        encodings, lengths, self.encoder_state = self.model.transcribe_streaming(
            self.chunk, self.length, self.encoder_state
        )
        if self.decode:
            self.search = greedy_consume(self.model, self.search, encodings, lengths, self.blank)
        return time.perf_counter() - start


def steady_seconds(runner: ChunkRunner, rounds: int) -> float:
    for _ in range(FILLED_CHUNKS):
        runner()
    return statistics.median(runner() for _ in range(rounds))


def interleaved_ratio(dense: ChunkRunner, sparse: ChunkRunner, rounds: int) -> float:
    """Median over rounds of dense time / sparse time, the two run back to back in alternating order."""
    for _ in range(FILLED_CHUNKS):
        dense(), sparse()
    ratios = []
    for round_ in range(rounds):
        if round_ % 2:
            s, d = sparse(), dense()
        else:
            d, s = dense(), sparse()
        ratios.append(d / s)
    return statistics.median(ratios)


def model_ratio_without_emissions(
    model: torch.nn.Module, sparse: torch.nn.Module, model_config: dict, chunk: torch.Tensor, rounds: int
) -> float:
    blank = blank_id(model_config)
    with torch.no_grad():
        for network in (model, sparse):
            network.joiner.linear.bias[blank] += SILENT_BLANK_BIAS
    ratio = interleaved_ratio(
        ChunkRunner(model, model_config, chunk, True), ChunkRunner(sparse, model_config, chunk, True), rounds
    )
    with torch.no_grad():
        for network in (model, sparse):
            network.joiner.linear.bias[blank] -= SILENT_BLANK_BIAS
    return ratio


class PrunableModel:
    """One preset's model with random weights, ranked once per unit; pruned copies per level."""

    def __init__(self, preset: str, seed: int) -> None:
        config = preset_config(preset)
        self.model_config = model_config_from(
            job_params.model(config), num_symbols=config["tokenizer"]["vocab_size"] + 1
        )
        torch.manual_seed(seed)
        self.model = build_model(self.model_config).eval()
        self.names = prunable_parameter_names(self.model, mask_spec(job_params.masks(config)))

    def rankings(self, unit_name: str) -> dict:
        granularity, block_shape = UNITS[unit_name]
        return rank_layers(self.model, self.names, granularity, block_shape)

    def pruned(self, rankings: dict, level: float) -> tuple[torch.nn.Module, dict]:
        model, masks = copy.deepcopy(self.model), masks_at(rankings, level)
        apply_masks_(model, masks)
        return model, masks


def measure(source: PrunableModel, rankings: dict, unit_name: str, level: float, args: argparse.Namespace) -> dict:
    model_config, block_shape = source.model_config, UNITS[unit_name][1]
    model, masks = source.pruned(rankings, level)
    rows = streaming_chunk_rows(model_config)
    sparse, layers = sparse_inference_model(model, masks, tuple(block_shape), rows, args.kernel_repeats)
    frames = model_config["segment_length"] + model_config["right_context_length"]
    chunk = torch.randn(1, frames, model_config["input_dim"], generator=torch.Generator().manual_seed(args.seed))
    linears = sum(layer.choice.seconds[DENSE] for layer in layers) / sum(
        layer.choice.seconds[layer.choice.kernel] for layer in layers
    )
    return {
        "linears": linears,
        "encoder": interleaved_ratio(
            ChunkRunner(model, model_config, chunk, False), ChunkRunner(sparse, model_config, chunk, False), args.rounds
        ),
        "model_most": interleaved_ratio(
            ChunkRunner(model, model_config, chunk, True), ChunkRunner(sparse, model_config, chunk, True), args.rounds
        ),
        "model_least": model_ratio_without_emissions(model, sparse, model_config, chunk, args.rounds),
        "kernels": Counter(layer.choice.kernel for layer in layers),
        "dense_chunk_ms": 1e3 * steady_seconds(ChunkRunner(model, model_config, chunk, False), args.rounds),
    }


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s); ratios = dense time / sparse time per streaming chunk")
    for preset in args.presets:
        source = PrunableModel(preset, args.seed)
        for unit_name in args.units:
            rankings = source.rankings(unit_name)
            break_even = None
            for level in args.levels:
                result = measure(source, rankings, unit_name, level, args)
                if break_even is None and result["encoder"] >= BREAK_EVEN:
                    break_even = level
                kernels = ", ".join(f"{kernel} {count}" for kernel, count in sorted(result["kernels"].items()))
                print(
                    f"{preset:5s} {unit_name:12s} {level:4.2f}: linears {result['linears']:5.2f}x  "
                    f"encoder {result['encoder']:5.2f}x  "
                    f"model {result['model_most']:5.2f}-{result['model_least']:.2f}x  "
                    f"(dense encoder {result['dense_chunk_ms']:.2f} ms/chunk; layers: {kernels})",
                    flush=True,
                )
            print(
                f"{preset:5s} {unit_name:12s} break-even: "
                f"{'none measured' if break_even is None else f'{break_even:.0%}'}",
                flush=True,
            )


if __name__ == "__main__":
    main()
