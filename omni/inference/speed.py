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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torchaudio.models import RNNT

from omni.asr.decode import StreamingChunks, greedy_streaming
from omni.asr.model import blank_id

P95 = 95


@dataclass(frozen=True)
class Utterance:
    """One utterance's features [1, T, D] (no look-ahead pad) and its audio duration."""
    feats: torch.Tensor
    length: int
    audio_seconds: float


@dataclass(frozen=True)
class StreamingSpeed:
    rtf: float                    # compute seconds per audio second
    chunk_ms_mean: float
    chunk_ms_p95: float
    hypotheses: list[list[int]]   # token ids per utterance: the paths must agree on them

    def fields(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}_rtf": self.rtf, f"{prefix}_chunk_ms_mean": self.chunk_ms_mean,
                f"{prefix}_chunk_ms_p95": self.chunk_ms_p95}


def time_streaming(model: RNNT, model_config: Mapping[str, Any], utterances: Sequence[Utterance],
                   threads: int) -> StreamingSpeed:
    """Greedy streaming decode of every utterance on `threads` CPU threads, each chunk timed; the
    first utterance is decoded once untimed first (allocator and kernel warm-up)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        chunks = StreamingChunks(model_config["segment_length"], model_config["right_context_length"])
        blank = blank_id(model_config)
        greedy_streaming(model, utterances[0].feats, utterances[0].length, blank, chunks)
        seconds: list[float] = []
        hypotheses = [greedy_streaming(model, utterance.feats, utterance.length, blank, chunks, seconds)
                      for utterance in utterances]
    finally:
        torch.set_num_threads(previous)
    audio = sum(utterance.audio_seconds for utterance in utterances)
    return StreamingSpeed(rtf=sum(seconds) / audio, chunk_ms_mean=1e3 * statistics.fmean(seconds),
                          chunk_ms_p95=1e3 * float(np.percentile(seconds, P95)),
                          hypotheses=hypotheses)


def peak_memory_mb(request: Mapping[str, Any], workdir: Path) -> dict[str, float]:
    """Run omni.inference.peak_memory on `request` in a fresh interpreter; its reply in MB."""
    request_file = workdir / "peak_memory_request.json"
    request_file.write_text(json.dumps(request))
    result = subprocess.run([sys.executable, "-m", "omni.inference.peak_memory", str(request_file)],
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    if result.returncode != 0:
        raise RuntimeError(f"peak memory measurement failed ({request_file}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
