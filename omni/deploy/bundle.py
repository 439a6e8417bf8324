"""An exported model as a device sees it: the programs' files, their shapes and names, and the tokens.

A bundle is a folder with `deploy.json` and one subfolder per runtime and precision (`onnx`,
`onnx-int8`, `executorch`, `executorch-int8`), each holding the four programs of
omni.deploy.programs. This module imports neither torch nor a runtime: `transcribe` reads a bundle on a
machine that has only numpy and ONNX Runtime.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BUNDLE_FORMAT = 1
MANIFEST = "deploy.json"
PROGRAMS = ("features", "encoder", "predictor", "joiner")
RUNTIMES = {"onnx": ".onnx", "executorch": ".pte"}
PRECISIONS = ("fp32", "int8")
# Upper bound on symbols emitted at one encoder frame (guards against a degenerate model): the greedy search's
# in PyTorch (omni.asr.decode) and in the runtimes (omni.deploy.recognizer); here, where neither needs torch.
MAX_SYMBOLS_PER_FRAME = 5
WORD_BOUNDARY = "\u2581"  # sentencepiece's word-start mark


def samples_for_frames(frames: int, n_fft: int, hop: int) -> int:
    return (frames - 1) * hop + n_fft


@dataclass(frozen=True)
class StreamingShape:
    """What fixes every program's shapes: the chunk, the caches, the state widths."""

    chunk_frames: int  # input frames per chunk: segment + right-context look-ahead
    segment_frames: int  # input frames a chunk advances by
    stride: int  # input frames per encoder frame
    layers: int  # Emformer layers
    width: int  # Emformer width (keys, values, memory)
    left_context: int  # cached key/value rows per layer (encoder frames)
    memory: int  # memory vectors per layer (0 = none)
    segment: int  # encoder frames per chunk
    predictor_layers: int
    predictor_width: int
    encoding_dim: int
    num_symbols: int
    n_mels: int
    n_fft: int  # samples per feature frame
    hop_length: int  # samples between feature frames
    sample_rate: int
    key_width: int | None = None  # cached key/value width: the widest layer's heads x head width, where a
    # structured model's layers keep fewer heads (None: `width`, every head)

    @property
    def cache_width(self) -> int:
        return self.width if self.key_width is None else self.key_width

    @property
    def block_samples(self) -> int:
        """Samples the features program takes: those of one segment's frames."""
        return samples_for_frames(self.segment_frames, self.n_fft, self.hop_length)

    def encoder_state(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the encoder's state tensors (all float32 but `processed`, int64), in program order."""
        shapes: dict[str, tuple[int, ...]] = {
            "left_keys": (self.layers, self.left_context, 1, self.cache_width),
            "left_values": (self.layers, self.left_context, 1, self.cache_width),
        }
        if self.memory:
            shapes["memory"] = (self.layers, self.memory, 1, self.width)
        shapes["processed"] = (1,)
        return shapes

    def predictor_state(self) -> dict[str, tuple[int, ...]]:
        shape = (self.predictor_layers, 1, self.predictor_width)
        return {"hidden": shape, "cell": shape}

    def valid_encoder_frames(self, valid_input_frames: int) -> int:
        """Encoder frames of a chunk that carry speech, as torchaudio counts them for `transcribe_streaming`
        called with the chunk's valid frames plus the look-ahead."""
        look_ahead = self.chunk_frames - self.segment_frames
        return max(0, (valid_input_frames + look_ahead) // self.stride - look_ahead // self.stride)


def program_names(shape: StreamingShape) -> dict[str, tuple[list[str], list[str]]]:
    """Each program's input and output names, in call order (the state's `next_*` outputs feed back)."""
    state = list(shape.encoder_state())
    return {
        "features": (["samples"], ["features"]),
        "encoder": (["chunk", *state], ["encodings", *(f"next_{name}" for name in state)]),
        "predictor": (["token", "hidden", "cell"], ["prediction", "next_hidden", "next_cell"]),
        "joiner": (["encoding", "prediction"], ["logits"]),
    }


def variant_folder(runtime: str, precision: str) -> str:
    """`onnx`, `onnx-int8`, `executorch`, `executorch-int8`."""
    return runtime if precision == "fp32" else f"{runtime}-{precision}"


@dataclass(frozen=True)
class Bundle:
    folder: Path
    shape: StreamingShape
    blank: int
    pieces: list[str]  # the tokenizer's pieces by id: text without sentencepiece
    variants: dict[str, dict[str, str]]  # variant folder -> program -> file, relative to `folder`

    def program_file(self, variant: str, program: str) -> Path:
        if variant not in self.variants:
            raise ValueError(f"{self.folder / MANIFEST}: no variant {variant!r} (has {sorted(self.variants)})")
        return self.folder / self.variants[variant][program]

    def text(self, tokens: list[int]) -> str:
        return "".join(self.pieces[token] for token in tokens).replace(WORD_BOUNDARY, " ").strip()

    def write(self) -> None:
        manifest = {
            "format": BUNDLE_FORMAT,
            "shape": asdict(self.shape),
            "blank": self.blank,
            "pieces": self.pieces,
            "variants": self.variants,
        }
        path = self.folder / MANIFEST
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(json.dumps(manifest, indent=1))
        partial.replace(path)


def read_bundle(folder: str | Path) -> Bundle:
    """The bundle in `folder` (or whose deploy.json is `folder`), with one clear error if it is not one."""
    folder = Path(folder)
    path = folder if folder.name == MANIFEST else folder / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(
            f"{path}: not an exported model (no {MANIFEST}; export one with the export_runtimes rule)"
        ) from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    if manifest.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"{path}: bundle format {manifest.get('format')!r}, this code reads {BUNDLE_FORMAT}")
    return Bundle(
        path.parent, StreamingShape(**manifest["shape"]), manifest["blank"], manifest["pieces"], manifest["variants"]
    )
