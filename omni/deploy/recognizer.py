"""Streaming greedy recognition on an exported bundle, through ONNX Runtime or ExecuTorch, with numpy.

The same search as omni.asr.decode's greedy streaming decode, written against the four programs
instead of the torchaudio model: per chunk, the encoder program on a segment and its look-ahead
with the state fed back, then for each encoder frame up to MAX_SYMBOLS_PER_FRAME joiner calls and a
predictor call per emitted symbol. Chunks are cut exactly as omni.asr.decode.StreamingChunks cuts
them (the last chunk zero-padded), so the runtime and PyTorch decode the same frames.

The ONNX path imports neither torch nor sentencepiece: a device (or a user's laptop) needs numpy and
onnxruntime. ExecuTorch's Python runtime takes torch tensors, so its path imports torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from omni.deploy.bundle import MAX_SYMBOLS_PER_FRAME, PROGRAMS, Bundle


class Program(Protocol):
    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]: ...


class OnnxProgram:
    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._inputs = [entry.name for entry in self._session.get_inputs()]

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        return self._session.run(None, dict(zip(self._inputs, inputs)))


class ExecutorchProgram:
    def __init__(self, path: Path, threads: int) -> None:
        try:
            import torch
            from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
            from executorch.runtime import Runtime
        except ImportError as error:
            raise ValueError(
                f"{path}: the ExecuTorch variants need torch and executorch ({error}); install them"
                " (pip install '.[executorch]') or choose an ONNX variant"
            ) from error

        _unsafe_reset_threadpool(threads)  # XNNPACK's pool: torch's thread setting does not reach it
        self._torch = torch
        self._method = Runtime.get().load_program(str(path)).load_method("forward")

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        outputs = self._method.execute([self._torch.from_numpy(np.ascontiguousarray(x)) for x in inputs])
        return [output.numpy() for output in outputs]


# Runtime -> the program class that loads a file of it: (path, threads) -> Program.
LOADERS: dict[str, Callable[[Path, int], Program]] = {"onnx": OnnxProgram, "executorch": ExecutorchProgram}


def load_programs(bundle: Bundle, variant: str, threads: int = 1) -> dict[str, Program]:
    """The four programs of one variant (`onnx`, `onnx-int8`, `executorch`, `executorch-int8`)."""
    loader = LOADERS[variant.split("-")[0]]
    return {name: loader(bundle.program_file(variant, name), threads) for name in PROGRAMS}


class FeatureStream:
    """Samples in, feature frames out, one segment's frames per features-program call; frames are
    the same as those of the whole utterance (frame-local front end)."""

    def __init__(self, bundle: Bundle, features: Program) -> None:
        self._shape, self._features = bundle.shape, features
        self._samples = np.zeros(0, dtype=np.float32)
        self._frames_out = 0  # frames emitted so far
        self._offset = 0  # the sample index _samples[0] stands for

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Frames [n, n_mels] that the new samples complete."""
        self._samples = np.concatenate([self._samples, samples.astype(np.float32, copy=False)])
        blocks = []
        while self._block_start() + self._shape.block_samples <= self._offset + len(self._samples):
            blocks.append(self._block(self._shape.segment_frames))
        return self._joined(blocks)

    def finish(self) -> np.ndarray:
        """The last frames (fewer than a segment's) once the audio has ended."""
        s = self._shape
        total = self._offset + len(self._samples)
        frames = (total - s.n_fft) // s.hop_length + 1 if total >= s.n_fft else 0
        missing = frames - self._frames_out
        return self._block(missing) if missing > 0 else np.zeros((0, s.n_mels), np.float32)

    def _block_start(self) -> int:
        return self._frames_out * self._shape.hop_length

    def _block(self, frames: int) -> np.ndarray:
        start = self._block_start() - self._offset
        window = self._samples[start : start + self._shape.block_samples]
        window = np.pad(window, (0, self._shape.block_samples - len(window)))
        computed = self._features(window[None])[0][0, :frames]
        self._frames_out += frames
        drop = self._block_start() - self._offset
        self._samples, self._offset = self._samples[drop:], self._offset + drop
        return computed

    def _joined(self, blocks: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(blocks) if blocks else np.zeros((0, self._shape.n_mels), np.float32)


class Recognizer:
    """Feature frames in (any number at a time), tokens out as chunks complete; `chunk_seconds` holds
    the wall time of each chunk's encoder call and search, the latency a device adds per chunk."""

    def __init__(self, bundle: Bundle, programs: dict[str, Program]) -> None:
        self.bundle, self._programs = bundle, programs
        shape = bundle.shape
        self._state = [
            np.zeros(dims, dtype=np.int64 if name == "processed" else np.float32)
            for name, dims in shape.encoder_state().items()
        ]
        self._frames = np.zeros((0, shape.n_mels), np.float32)  # from the next chunk's first frame on
        self.tokens: list[int] = []
        self.chunk_seconds: list[float] = []
        hidden, cell = (np.zeros(dims, np.float32) for dims in shape.predictor_state().values())
        self._predicted = self._predict(bundle.blank, hidden, cell)

    def push(self, frames: np.ndarray) -> list[int]:
        """Decode every chunk whose look-ahead the new frames complete; the tokens they added."""
        shape, before = self.bundle.shape, len(self.tokens)
        self._frames = np.concatenate([self._frames, frames])
        while shape.chunk_frames <= len(self._frames):
            self._chunk(self._frames[: shape.chunk_frames], shape.segment_frames)
            self._frames = self._frames[shape.segment_frames :]
        return self.tokens[before:]

    def finish(self) -> list[int]:
        """Decode what is left once the audio has ended (the last chunks, zero-padded)."""
        shape, before = self.bundle.shape, len(self.tokens)
        look_ahead = shape.chunk_frames - shape.segment_frames
        while len(self._frames):
            valid = min(shape.segment_frames, len(self._frames))
            available = valid + min(look_ahead, len(self._frames) - valid)
            chunk = np.zeros((shape.chunk_frames, shape.n_mels), np.float32)
            chunk[:available] = self._frames[:available]
            self._chunk(chunk, valid)
            self._frames = self._frames[shape.segment_frames :]
        return self.tokens[before:]

    def _chunk(self, chunk: np.ndarray, valid: int) -> None:
        began = time.perf_counter()
        encodings, *self._state = self._programs["encoder"](chunk[None], *self._state)
        blank = self.bundle.blank
        for frame in range(self.bundle.shape.valid_encoder_frames(valid)):
            encoding = encodings[:, frame : frame + 1]
            for _ in range(MAX_SYMBOLS_PER_FRAME):
                logits = self._programs["joiner"](encoding, self._predicted[0])[0]
                best = int(logits[0].argmax())
                if best == blank:
                    break
                self._predicted = self._predict(best, *self._predicted[1:])
                self.tokens.append(best)
        self.chunk_seconds.append(time.perf_counter() - began)

    def _predict(self, token: int, hidden: np.ndarray, cell: np.ndarray) -> list[np.ndarray]:
        return self._programs["predictor"](np.array([[token]], dtype=np.int64), hidden, cell)


def recognize_frames(bundle: Bundle, programs: dict[str, Program], frames: np.ndarray) -> Recognizer:
    """A whole utterance's feature frames [T, n_mels] decoded as a stream (what the speed table times)."""
    recognizer = Recognizer(bundle, programs)
    recognizer.push(frames)
    recognizer.finish()
    return recognizer


def recognize_stream(
    bundle: Bundle, programs: dict[str, Program], blocks: Iterator[np.ndarray]
) -> Iterator[tuple[Recognizer, bool]]:
    """Audio blocks (float32 samples at the bundle's rate) in; the recognizer (its tokens so far, its
    chunk timings) out after every block that added tokens, and once, final, at the end."""
    features = FeatureStream(bundle, programs["features"])
    recognizer = Recognizer(bundle, programs)
    for block in blocks:
        if recognizer.push(features.push(block)):
            yield recognizer, False
    recognizer.push(features.finish())
    recognizer.finish()
    yield recognizer, True
