"""What a model costs on a device while it streams: real-time factor, latency per chunk, peak memory.

A device decodes one utterance at a time, chunk by chunk (a segment and its look-ahead), on the
CPU threads it has: the latency a user feels is the time of one chunk once its audio is in, and
the model keeps up only while the real-time factor (compute seconds per audio second) is below 1.
Features are computed before the clock starts: the log-mel front end is the same for every model.
Peak memory is measured in a fresh process (omni.inference.peak_memory), whose resident-set high
water mark is the model's alone, not the measuring job's.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchaudio.models import RNNT

from omni.asr.decode import StreamingChunks, greedy_streaming
from omni.asr.model import ModelConfig, blank_id

P95 = 95


@dataclass(frozen=True)
class Utterance:
    """One utterance's features [1, T, D] (no look-ahead pad) and its audio duration."""

    feats: torch.Tensor
    length: int
    audio_seconds: float


@dataclass(frozen=True)
class StreamingSpeed:
    rtf: float  # compute seconds per audio second
    chunk_ms_mean: float
    chunk_ms_p95: float
    utterance_seconds: list[float]  # compute time per utterance: pairs with another model's, utterance by utterance
    hypotheses: list[list[int]]  # token ids per utterance: the paths must agree on them

    def fields(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}_rtf": self.rtf,
            f"{prefix}_chunk_ms_mean": self.chunk_ms_mean,
            f"{prefix}_chunk_ms_p95": self.chunk_ms_p95,
        }

    def speedup_over(self, reference: StreamingSpeed) -> float:
        """Median over utterances of the reference's time / this model's on the same utterance: paired,
        so a slow moment of the machine that fell on one utterance cancels out of its ratio."""
        return statistics.median(
            theirs / ours for ours, theirs in zip(self.utterance_seconds, reference.utterance_seconds)
        )


# Decodes one utterance and appends each chunk's wall time to the list: any path a device could run.
StreamingDecoder = Callable[[Utterance, list[float]], list[int]]


def eager_decoder(model: RNNT, model_config: ModelConfig) -> StreamingDecoder:
    """A PyTorch model's greedy streaming decode (omni.asr.decode) as a StreamingDecoder."""
    chunks = StreamingChunks(model_config["segment_length"], model_config["right_context_length"])
    blank = blank_id(model_config)

    def decode(utterance: Utterance, chunk_seconds: list[float]) -> list[int]:
        return greedy_streaming(model, utterance.feats, utterance.length, blank, chunks, chunk_seconds)

    return decode


def time_streaming(
    decoders: Mapping[str, StreamingDecoder], utterances: Sequence[Utterance], threads: int
) -> dict[str, StreamingSpeed]:
    """Greedy streaming decode of every utterance by every decoder, torch on `threads` CPU threads, each
    chunk timed. The decoders take turns utterance by utterance (their order rotating from one utterance
    to the next), so load elsewhere on a shared machine falls on all of them alike instead of on whichever
    ran last; each first decodes the first utterance once untimed (allocator and kernel warm-up)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    names = list(decoders)
    seconds: dict[str, list[list[float]]] = {name: [] for name in names}
    hypotheses: dict[str, list[list[int]]] = {name: [] for name in names}
    try:
        for name in names:
            decoders[name](utterances[0], [])
        for index, utterance in enumerate(utterances):
            for name in names[index % len(names) :] + names[: index % len(names)]:
                chunk_seconds: list[float] = []
                hypotheses[name].append(decoders[name](utterance, chunk_seconds))
                seconds[name].append(chunk_seconds)
    finally:
        torch.set_num_threads(previous)
    audio = sum(utterance.audio_seconds for utterance in utterances)
    return {name: _speed(seconds[name], hypotheses[name], audio) for name in names}


def _speed(seconds: list[list[float]], hypotheses: list[list[int]], audio_seconds: float) -> StreamingSpeed:
    chunks = [chunk for utterance in seconds for chunk in utterance]
    return StreamingSpeed(
        rtf=sum(chunks) / audio_seconds,
        chunk_ms_mean=1e3 * statistics.fmean(chunks),
        chunk_ms_p95=1e3 * float(np.percentile(chunks, P95)),
        utterance_seconds=[sum(utterance) for utterance in seconds],
        hypotheses=hypotheses,
    )


def peak_memory_mb(request: Mapping[str, Any], workdir: Path) -> dict[str, float]:
    """Run omni.inference.peak_memory on `request` in a fresh interpreter; its reply in MB."""
    request_file = workdir / "peak_memory_request.json"
    request_file.write_text(json.dumps(request))
    result = subprocess.run(
        [sys.executable, "-m", "omni.inference.peak_memory", str(request_file)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    if result.returncode != 0:
        raise RuntimeError(f"peak memory measurement failed ({request_file}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
