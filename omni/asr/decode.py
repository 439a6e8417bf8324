"""Decoding an RNN-T two ways a device would and a researcher wants: full-utterance and true
streaming (segment + right-context chunks through `transcribe_streaming` with carried state),
each with greedy search or torchaudio's RNNTBeamSearch.

Greedy search is batched here because evaluating dozens of models on every split is the
pipeline's largest decode cost; beam search is torchaudio's and runs one utterance at a time.

Streaming uses features of the whole utterance cut into chunks: the log-mel front end is
frame-local (each 10 ms frame depends only on its own 25 ms window), so this equals computing
features chunk by chunk on the device.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torchaudio.models import RNNT, RNNTBeamSearch

from omni.deploy.bundle import MAX_SYMBOLS_PER_FRAME  # one bound for the search in PyTorch and in the runtimes

PredictorState = list[list[torch.Tensor]]


@dataclass
class StreamingChunks:
    """Input frames per chunk: a segment plus its right-context look-ahead."""

    segment_length: int
    right_context_length: int

    def split(self, feats: torch.Tensor, length: int) -> list[tuple[torch.Tensor, int]]:
        """Chunks of one utterance [1, T, D] as (chunk [1, seg+rc, D], valid frames incl. look-ahead)."""
        seg, rc = self.segment_length, self.right_context_length
        chunks = []
        for start in range(0, length, seg):
            valid = min(seg, length - start)
            look_ahead = min(rc, max(0, length - start - valid))
            chunk = feats[:, start : start + valid + look_ahead]
            chunk = torch.nn.functional.pad(chunk, (0, 0, 0, seg + rc - chunk.size(1)))
            chunks.append((chunk, valid + rc))
        return chunks


@dataclass
class GreedyState:
    """Per-utterance search state carried across encoder frames (and streaming chunks)."""

    tokens: list[list[int]]
    predictor_out: torch.Tensor
    predictor_state: PredictorState = field(default_factory=list)


def _select(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, *([1] * (new.dim() - 1))), new, old)


@torch.inference_mode()
def greedy_start(model: RNNT, batch_size: int, blank: int, device: torch.device) -> GreedyState:
    start = torch.full((batch_size, 1), blank, dtype=torch.long, device=device)
    ones = torch.ones(batch_size, dtype=torch.long, device=device)
    out, _, state = model.predict(start, ones, None)
    return GreedyState([[] for _ in range(batch_size)], out, state)


@torch.inference_mode()
def greedy_consume(
    model: RNNT, state: GreedyState, encodings: torch.Tensor, encoding_lengths: torch.Tensor, blank: int
) -> GreedyState:
    """Advance greedy search over encoder frames [B, T, D]; frames past a length are ignored."""
    batch = encodings.size(0)
    ones = torch.ones(batch, dtype=torch.long, device=encodings.device)
    for t in range(encodings.size(1)):
        may_emit = t < encoding_lengths
        frame = encodings[:, t : t + 1]
        for _ in range(MAX_SYMBOLS_PER_FRAME):
            logits, _, _ = model.join(frame, ones, state.predictor_out, ones)
            best = logits[:, 0, 0].argmax(-1)
            emit = may_emit & (best != blank)
            if not bool(emit.any()):
                break
            out, _, new_state = model.predict(best.unsqueeze(1), ones, state.predictor_state)
            state.predictor_out = _select(emit, out, state.predictor_out)
            state.predictor_state = [
                [_select(emit, n, o) for n, o in zip(new_layer, old_layer)]
                for new_layer, old_layer in zip(new_state, state.predictor_state)
            ]
            for row in emit.nonzero().flatten().tolist():
                state.tokens[row].append(int(best[row]))
            may_emit = emit
    return state


@torch.inference_mode()
def greedy_full(model: RNNT, inputs: torch.Tensor, lengths: torch.Tensor, blank: int) -> list[list[int]]:
    """`inputs` already padded by the right context; `lengths` unpadded."""
    encodings, encoding_lengths = model.transcribe(inputs, lengths)
    state = greedy_start(model, inputs.size(0), blank, inputs.device)
    return greedy_consume(model, state, encodings, encoding_lengths, blank).tokens


@torch.inference_mode()
def greedy_streaming(
    model: RNNT,
    feats: torch.Tensor,
    length: int,
    blank: int,
    chunks: StreamingChunks,
    chunk_seconds: list[float] | None = None,
) -> list[int]:
    """One utterance [1, T, D] (no look-ahead pad), chunk by chunk, state carried. `chunk_seconds`,
    when given, receives the wall time of each chunk (encoder + search): a device's latency per chunk."""
    state = greedy_start(model, 1, blank, feats.device)
    encoder_state = None
    for chunk, valid in chunks.split(feats, length):
        start = time.perf_counter()
        encodings, encoding_lengths, encoder_state = model.transcribe_streaming(
            chunk, torch.tensor([valid], device=feats.device), encoder_state
        )
        state = greedy_consume(model, state, encodings, encoding_lengths, blank)
        if chunk_seconds is not None:
            chunk_seconds.append(time.perf_counter() - start)
    return state.tokens[0]


def _best_tokens(search: RNNTBeamSearch, hypotheses: list, blank: int) -> list[int]:
    best = max(hypotheses, key=search.hypo_sort_key)
    return [t for t in best[0] if t != blank]


@torch.inference_mode()
def beam_full(search: RNNTBeamSearch, inputs: torch.Tensor, length: int, beam_width: int, blank: int) -> list[int]:
    """One utterance [1, T + rc, D] padded by the right context."""
    hypotheses = search(inputs, torch.tensor([length], device=inputs.device), beam_width)
    return _best_tokens(search, hypotheses, blank)


@torch.inference_mode()
def beam_streaming(
    search: RNNTBeamSearch,
    model: RNNT,
    feats: torch.Tensor,
    length: int,
    beam_width: int,
    blank: int,
    chunks: StreamingChunks,
) -> list[int]:
    """Chunked beam search with carried encoder state and hypotheses.

    `RNNTBeamSearch.infer` searches every frame of a chunk, including the zero-padded tail of
    the last one; trimming the encodings to their valid length (then searching with the same
    torchaudio search) keeps padding from being decoded as speech.
    """
    encoder_state, hypotheses = None, None
    for chunk, valid in chunks.split(feats, length):
        encodings, encoding_lengths, encoder_state = model.transcribe_streaming(
            chunk, torch.tensor([valid], device=feats.device), encoder_state
        )
        hypotheses = search._search(encodings[:, : int(encoding_lengths[0])], hypotheses, beam_width)
    if hypotheses is None:
        raise ValueError(f"beam_streaming: an utterance of {length} frames has no chunk to search")
    return _best_tokens(search, hypotheses, blank)
