"""Streaming decode must be what full-utterance decode computes, chunk by chunk.

Designed difference: the final, partial segment. In full mode the Emformer treats the last
reduced frame as that segment's right context; streaming feeds the segment followed by zero
look-ahead. Every frame before the final segment is identical; the last <= segment frames
differ slightly. Greedy transcripts still agree on nearly every utterance.
"""

from __future__ import annotations

import torch

from omni import job_params
from omni.asr.decode import StreamingChunks, greedy_full, greedy_streaming
from omni.asr.model import build_model, model_config_from
from tests.conftest import layered_config

NUM_SYMBOLS = 41


def random_model() -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    config = layered_config({"model": {"presets": {"tiny": {"num_layers": 2}}}})
    model_config = model_config_from(job_params.model(config), NUM_SYMBOLS)
    return build_model(model_config).eval(), model_config


def test_streaming_encodings_equal_full_before_the_final_segment() -> None:
    model, mc = random_model()
    chunks = StreamingChunks(mc["segment_length"], mc["right_context_length"])
    stride = mc["time_reduction_stride"]
    for frames in (160, 173, 237):
        feats = torch.randn(1, frames, mc["input_dim"])
        full, full_lengths = model.transcribe(
            torch.nn.functional.pad(feats, (0, 0, 0, mc["right_context_length"])), torch.tensor([frames])
        )
        pieces, state = [], None
        for chunk, valid in chunks.split(feats, frames):
            enc, lengths, state = model.transcribe_streaming(chunk, torch.tensor([valid]), state)
            pieces.append(enc[:, : int(lengths[0])])
        streamed = torch.cat(pieces, dim=1)
        assert streamed.size(1) == int(full_lengths[0]) == frames // stride
        final_segment = (frames - 1) // mc["segment_length"] * mc["segment_length"] // stride
        torch.testing.assert_close(streamed[:, :final_segment], full[:, :final_segment], atol=1e-5, rtol=1e-5)


def test_greedy_streaming_transcripts_agree_with_full() -> None:
    """A random model emits many symbols, so any drift in the encoder would show in the tokens."""
    model, mc = random_model()
    blank = NUM_SYMBOLS - 1
    chunks = StreamingChunks(mc["segment_length"], mc["right_context_length"])
    agree, compared = 0, 0
    for frames in (96, 130, 171, 200, 245):
        feats = torch.randn(1, frames, mc["input_dim"])
        padded = torch.nn.functional.pad(feats, (0, 0, 0, mc["right_context_length"]))
        full = greedy_full(model, padded, torch.tensor([frames]), blank)[0]
        streamed = greedy_streaming(model, feats, frames, blank, chunks)
        assert len(full) > 5  # the comparison is not of two empty outputs
        final = frames // mc["time_reduction_stride"]
        compared += 1
        # Tokens emitted before the final segment are identical; allow the tail to differ.
        prefix = min(len(full), len(streamed)) - final // 2
        agree += full[: max(0, prefix)] == streamed[: max(0, prefix)]
    assert agree == compared


def test_batched_greedy_equals_one_by_one() -> None:
    model, mc = random_model()
    blank = NUM_SYMBOLS - 1
    lengths = torch.tensor([150, 97, 60])
    feats = torch.randn(3, 150 + mc["right_context_length"], mc["input_dim"])
    for row, length in enumerate(lengths.tolist()):
        feats[row, length:] = 0
    batched = greedy_full(model, feats, lengths, blank)
    for row, length in enumerate(lengths.tolist()):
        one = torch.nn.functional.pad(feats[row : row + 1, :length], (0, 0, 0, mc["right_context_length"]))
        assert batched[row] == greedy_full(model, one, torch.tensor([length]), blank)[0]
