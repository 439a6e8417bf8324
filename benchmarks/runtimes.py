"""Which runtime runs a streaming chunk fastest on 1 thread, and does unstructured sparsity make any faster?

For each model preset (`tiny`: the default study's, `base`: the LibriSpeech study's, with their
vocabularies) a model with random weights, dense and pruned by magnitude (the encoder's attention and
feed-forward weights, as `sparsity.prunable`) in each of `--units`: `unstructured` (weights zeroed, the
model's shapes unchanged) and `structured` (whole feed-forward neurons and attention heads, the model
sliced to a smaller dense one: omni.sparsity.slicing), runs one streaming chunk on each inference path:
  eager            PyTorch fp32: torchaudio's `transcribe_streaming` and the model's join/predict,
                   as omni.asr.decode's greedy streaming decode calls them (what the project timed so far)
  onnx, onnx-int8  ONNX Runtime, the bundle's programs (omni.deploy.export)
  executorch, executorch-int8  ExecuTorch + XNNPACK, the bundle's programs
A chunk is the encoder on a segment and its look-ahead with the state fed back, then the search over
that chunk's encoder frames. The search does a FIXED amount of work on every path: per encoder frame
one joiner call (and the argmax a search reads) and, every PREDICTOR_EVERY-th frame, one predictor
call, about a trained model's emission rate. The argmax-driven search is not run: with random weights
it emits up to 5 symbols a frame (or none) and would time the weights, not the runtime.

Timed per chunk, steady state (FILLED_CHUNKS first, so the left context is full), every path and
sparsity interleaved round by round (the order rotating) so machine noise hits all paths alike:
  encoder ms       the encoder call alone (median over rounds)
  chunk ms         encoder + search (median over rounds)
  x best runtime   median over rounds of chunk time / the reference's: the fastest DENSE runtime path
                   (ONNX or ExecuTorch, fp32 or int8), the peer a device engineer would pick; > 1 is slower
  x eager          the same against eager fp32 dense
  kept M           parameters the model keeps (all of them less the pruned weights; the same count for both
                   units at a level, but for the heads' rounding: round(level x heads) per layer)
  install MB       the variant's program files (features, encoder, predictor, joiner)
  download MB      the same files compressed with gzip -9 (where zeroed weights do shrink)

    .venv/bin/python benchmarks/runtimes.py [--presets tiny base] [--rounds 30] [--sparsities 0.0 0.8 0.9]
        [--units unstructured structured] [--out t.csv]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import gzip
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sparse_encoder import FILLED_CHUNKS, PRESET_CONFIGS, preset_config  # noqa: E402  (this script's folder)

from omni import job_params  # noqa: E402
from omni.asr.decode import greedy_start  # noqa: E402
from omni.asr.frontend import Frontend  # noqa: E402
from omni.asr.model import blank_id, build_model, model_config_from  # noqa: E402
from omni.data.features import LogMel  # noqa: E402
from omni.deploy.bundle import Bundle, StreamingShape  # noqa: E402
from omni.deploy.export import export_executorch, export_onnx  # noqa: E402
from omni.deploy.programs import build_programs  # noqa: E402
from omni.deploy.recognizer import Program, load_programs  # noqa: E402
from omni.jobs.specs import mask_spec  # noqa: E402
from omni.sparsity.masks import STRUCTURED, UNSTRUCTURED, apply_masks_, masks_at, prunable_parameter_names, rank_layers  # noqa: E402
from omni.sparsity.slicing import slice_structured  # noqa: E402

EAGER = "eager"
RUNTIME_VARIANTS = ("onnx", "onnx-int8", "executorch", "executorch-int8")
EXPORTERS = {"onnx": export_onnx, "executorch": export_executorch}
PREDICTOR_EVERY = 4  # encoder frames per emitted symbol, about a trained model's rate
THREADS = 1
DENSE = 0.0
MB = 1e6


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(PRESET_CONFIGS), choices=list(PRESET_CONFIGS))
    parser.add_argument("--rounds", type=int, default=30, help="timed chunks per path")
    parser.add_argument("--sparsities", nargs="+", type=float, default=[0.0, 0.8, 0.9])
    parser.add_argument("--units", nargs="+", default=[UNSTRUCTURED, STRUCTURED], choices=[UNSTRUCTURED, STRUCTURED])
    parser.add_argument("--out", type=Path, help="also write the table here as CSV")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if DENSE not in args.sparsities:
        parser.error(f"--sparsities must include {DENSE} (the reference is the fastest dense runtime)")
    return args


class ChunkRunner(Protocol):
    def __call__(self) -> tuple[float, float]:
        """Run the next chunk; (encoder seconds, whole-chunk seconds)."""
        ...


class EagerRunner:
    """The PyTorch model's streaming state over repeats of one chunk."""

    def __init__(self, model: torch.nn.Module, model_config: dict, chunk: torch.Tensor) -> None:
        self.model, self.chunk = model, chunk
        self.length = torch.tensor([chunk.size(1)])
        self.ones = torch.ones(1, dtype=torch.long)
        self.encoder_state = None
        self.search = greedy_start(model, 1, blank_id(model_config), chunk.device)
        self.frames = 0

    @torch.inference_mode()
    def __call__(self) -> tuple[float, float]:
        start = time.perf_counter()
        encodings, lengths, self.encoder_state = self.model.transcribe_streaming(
            self.chunk, self.length, self.encoder_state
        )
        encoded = time.perf_counter()
        search, ones = self.search, self.ones
        for frame in range(int(lengths[0])):
            logits, _, _ = self.model.join(encodings[:, frame : frame + 1], ones, search.predictor_out, ones)
            token = logits[:, 0, 0].argmax(-1)
            if self.frames % PREDICTOR_EVERY == 0:
                search.predictor_out, _, search.predictor_state = self.model.predict(
                    token.unsqueeze(1), ones, search.predictor_state
                )
            self.frames += 1
        return encoded - start, time.perf_counter() - start


class RuntimeRunner:
    """One variant's programs, with the state a recognizer keeps (omni.deploy.recognizer), over repeats of one chunk."""

    def __init__(self, programs: dict[str, Program], shape: StreamingShape, blank: int, chunk: np.ndarray) -> None:
        self.programs, self.shape, self.chunk = programs, shape, chunk
        self.state = [
            np.zeros(dims, dtype=np.int64 if name == "processed" else np.float32)
            for name, dims in shape.encoder_state().items()
        ]
        hidden, cell = (np.zeros(dims, np.float32) for dims in shape.predictor_state().values())
        self.predicted = programs["predictor"](np.array([[blank]], dtype=np.int64), hidden, cell)
        self.frames = 0

    def __call__(self) -> tuple[float, float]:
        start = time.perf_counter()
        encodings, *self.state = self.programs["encoder"](self.chunk, *self.state)
        encoded = time.perf_counter()
        for frame in range(self.shape.segment):
            logits = self.programs["joiner"](encodings[:, frame : frame + 1], self.predicted[0])[0]
            token = int(logits[0].argmax())
            if self.frames % PREDICTOR_EVERY == 0:
                self.predicted = self.programs["predictor"](np.array([[token]], dtype=np.int64), *self.predicted[1:])
            self.frames += 1
        return encoded - start, time.perf_counter() - start


@dataclass
class Measured:
    """One (sparsity, unit, path) row: its runner, timings per round, and its variant's file sizes."""

    sparsity: float
    unit: str
    kept_params: int
    name: str
    run: ChunkRunner
    install_mb: float | None = None  # None: eager has no exported files
    download_mb: float | None = None
    encoder_s: list[float] = field(default_factory=list)
    chunk_s: list[float] = field(default_factory=list)


def pruned_copy(
    model: torch.nn.Module, model_config: dict, rankings: dict | None, sparsity: float, unit: str
) -> tuple[torch.nn.Module, dict, int]:
    """(the model at `sparsity` in `unit`, its model_config, parameters kept): every level from the same
    dense weights (`rankings` None: the dense model); a structured one sliced to its smaller dense model."""
    masks = {} if rankings is None else masks_at(rankings, sparsity)
    pruned = copy.deepcopy(model)
    apply_masks_(pruned, masks)
    kept = sum(p.numel() for p in model.parameters()) - sum(int((~mask).sum()) for mask in masks.values())
    if unit == STRUCTURED:
        pruned, model_config = slice_structured(pruned, model_config, masks)
    return pruned.eval(), model_config, kept


def export_variants(model: torch.nn.Module, model_config: dict, frontend: Frontend, folder: Path, label: str) -> Bundle:
    """Both runtimes' fp32 and int8 programs of `model` in `folder`, as a bundle (dummy pieces: nothing is read
    as text). The exporters' own progress goes to stderr with ours, away from the table."""
    programs = build_programs(model, model_config, frontend)
    variants: dict[str, dict[str, str]] = {}
    for runtime, exporter in EXPORTERS.items():
        began = time.perf_counter()
        print(f"{label}: exporting {runtime} (fp32, int8) ...", file=sys.stderr, flush=True)
        with contextlib.redirect_stdout(sys.stderr):
            variants.update(exporter(programs, folder))
        print(f"{label}: {runtime} exported in {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    shape = programs.shape
    return Bundle(folder, shape, blank_id(model_config), [str(index) for index in range(shape.num_symbols)], variants)


def variant_sizes(bundle: Bundle, variant: str) -> tuple[float, float]:
    """(installed MB, gzip -9 MB) of the variant's program files (a file two variants share counts in both)."""
    files = [bundle.folder / relative for relative in sorted(set(bundle.variants[variant].values()))]
    installed = sum(path.stat().st_size for path in files)
    download = sum(len(gzip.compress(path.read_bytes(), compresslevel=9)) for path in files)
    return installed / MB, download / MB


def interleaved(paths: list[Measured], rounds: int) -> None:
    """Fill every path's left context, then time `rounds` chunks each, the order rotating round by round."""
    for _ in range(FILLED_CHUNKS):
        for path in paths:
            path.run()
    for round_ in range(rounds):
        for offset in range(len(paths)):
            path = paths[(round_ + offset) % len(paths)]
            encoder, chunk = path.run()
            path.encoder_s.append(encoder)
            path.chunk_s.append(chunk)


def median_ratio(path: Measured, reference: Measured) -> float:
    return statistics.median(ours / theirs for ours, theirs in zip(path.chunk_s, reference.chunk_s))


def measure_preset(preset: str, args: argparse.Namespace, folder: Path) -> list[dict]:
    config = preset_config(preset)
    model_config = model_config_from(job_params.model(config), num_symbols=config["tokenizer"]["vocab_size"] + 1)
    torch.manual_seed(args.seed)
    model = build_model(model_config).eval()
    prunable = prunable_parameter_names(model, mask_spec(job_params.masks(config)))
    rankings = {unit: rank_layers(model, prunable, unit, [1, 1]) for unit in args.units}
    n_mels, logmel = model_config["input_dim"], job_params.logmel(config)
    stats = {"mean": [0.0] * n_mels, "std": [1.0] * n_mels}
    frontend = Frontend(LogMel.from_section(logmel), stats, model_config["right_context_length"])
    frames = model_config["segment_length"] + model_config["right_context_length"]
    chunk = torch.randn(1, frames, n_mels, generator=torch.Generator().manual_seed(args.seed))
    paths: list[Measured] = []
    models = [(DENSE, "dense")] + [
        (sparsity, unit) for sparsity in args.sparsities if sparsity != DENSE for unit in args.units
    ]
    for sparsity, unit in models:
        pruned, pruned_config, kept = pruned_copy(model, model_config, rankings.get(unit), sparsity, unit)
        label = f"{preset} {sparsity:.0%} {unit}"
        paths.append(Measured(sparsity, unit, kept, EAGER, EagerRunner(pruned, pruned_config, chunk)))
        bundle = export_variants(pruned, pruned_config, frontend, folder / f"{preset}-{sparsity}-{unit}", label)
        for variant in RUNTIME_VARIANTS:
            programs = load_programs(bundle, variant, THREADS)
            runner = RuntimeRunner(programs, bundle.shape, bundle.blank, chunk.numpy())
            paths.append(Measured(sparsity, unit, kept, variant, runner, *variant_sizes(bundle, variant)))
    print(f"{preset}: timing {len(paths)} paths x {args.rounds} rounds ...", file=sys.stderr, flush=True)
    interleaved(paths, args.rounds)
    dense = [path for path in paths if path.sparsity == DENSE]
    eager = next(path for path in dense if path.name == EAGER)
    best = min((path for path in dense if path.name != EAGER), key=lambda path: statistics.median(path.chunk_s))
    chunk_ms = 1e3 * model_config["segment_length"] * logmel["hop_length"] / logmel["sample_rate"]
    print(
        f"\n{preset}: {chunk_ms:.0f} ms of audio per chunk ({model_config['segment_length']} + "
        f"{model_config['right_context_length']} look-ahead input frames); reference: {best.name} at "
        f"{best.sparsity:.0%}",
        flush=True,
    )
    return [
        {
            "preset": preset,
            "sparsity": path.sparsity,
            "unit": path.unit,
            "kept_m": path.kept_params / 1e6,
            "path": path.name,
            "encoder_ms": 1e3 * statistics.median(path.encoder_s),
            "chunk_ms": 1e3 * statistics.median(path.chunk_s),
            "x_best_runtime": median_ratio(path, best),
            "x_eager": median_ratio(path, eager),
            "install_mb": path.install_mb,
            "download_mb": path.download_mb,
        }
        for path in paths
    ]


def number(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def print_table(rows: list[dict]) -> None:
    print(
        f"{'preset':<6} {'sparsity':>8} {'unit':<12} {'kept M':>6} {'path':<16} {'encoder ms':>10} {'chunk ms':>9} "
        f"{'x best runtime':>14} {'x eager':>8} {'install MB':>10} {'download MB':>11}"
    )
    for row in rows:
        print(
            f"{row['preset']:<6} {row['sparsity']:>8.0%} {row['unit']:<12} {row['kept_m']:>6.2f} {row['path']:<16} "
            f"{row['encoder_ms']:>10.2f} "
            f"{row['chunk_ms']:>9.2f} {row['x_best_runtime']:>14.2f} {row['x_eager']:>8.2f} "
            f"{number(row['install_mb'], 10, 2)} {number(row['download_mb'], 11, 2)}",
            flush=True,
        )


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(THREADS)
    print(
        f"torch {torch.__version__}, {THREADS} thread; per streaming chunk, search fixed at 1 joiner call per "
        f"encoder frame + 1 predictor call per {PREDICTOR_EVERY} frames; {args.rounds} interleaved rounds"
    )
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        for preset in args.presets:
            preset_rows = measure_preset(preset, args, Path(scratch))
            print_table(preset_rows)
            rows.extend(preset_rows)
    if args.out:
        write_csv(rows, args.out)


if __name__ == "__main__":
    main()
