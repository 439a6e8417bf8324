"""The four fixed-shape programs a device runs to stream one utterance, built from a torchaudio RNN-T.

  features   the samples of one segment's frames -> those normalised log-mel frames [1, segment, n_mels]
  encoder    one chunk of frames (segment + look-ahead) and the encoder state -> encoder frames, next state
  predictor  one token and the predictor's LSTM state -> predictor output, next state
  joiner     one encoder frame and one predictor output -> logits over the symbols

Why a wrapper at all: torchaudio's `transcribe_streaming` keeps the Emformer's left-context cache
as tensors it SLICES by how much of the cache is filled (`_EmformerLayer._unpack_state` calls
`.item()` on the step counter), a data-dependent shape that ExecuTorch cannot lower and that makes
every chunk a differently shaped call. Here the cache keeps its full size and its unfilled rows are
masked out of the attention instead; since attention without positional terms does not depend on
the order of its keys, that is the same computation. Everything else (layer norms, projections,
feed-forward, memory, the attention's probabilities) is the layers' own code: only the cache
handling is written here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchaudio.models import RNNT
from torchaudio.models.emformer import _EmformerLayer

from omni.asr.frontend import Frontend
from omni.asr.model import ModelConfig
from omni.data.features import LOG_FLOOR
from omni.deploy.bundle import StreamingShape


class FeaturesProgram(torch.nn.Module):
    """One block of samples -> its `frames` normalised log-mel frames, as the model was trained on them.

    The log-mel front end is frame-local (center=False), so a device computes a chunk's frames from
    that chunk's samples alone. The short-time Fourier transform is written as two matrix products
    with torchaudio's own window and mel filterbank because the exported STFT is not accurate enough:
    ONNX Runtime's STFT op gave 0.37 (normalised units) max error on a LibriSpeech utterance, where
    this form and torch's own fp32 FFT are both within 9e-4 of float64; ExecuTorch has no STFT at all.
    """

    # Buffers (register_buffer below), declared so they read as tensors, not as Module.__getattr__'s union.
    cosine: torch.Tensor
    sine: torch.Tensor
    filterbank: torch.Tensor
    positions: torch.Tensor

    def __init__(self, frontend: Frontend, frames: int) -> None:
        super().__init__()
        mel = frontend.logmel.mel
        n_fft, hop = mel.n_fft, mel.hop_length
        bins = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
        angle = 2 * torch.pi * torch.arange(n_fft, dtype=torch.float64)[:, None] * bins[None] / n_fft
        window = mel.spectrogram.window.to(torch.float64)[:, None]
        self.register_buffer("cosine", (window * torch.cos(angle)).float())
        self.register_buffer("sine", (window * torch.sin(angle)).float())
        self.register_buffer("filterbank", mel.mel_scale.fb.detach().clone())
        self.register_buffer("positions", torch.arange(frames)[:, None] * hop + torch.arange(n_fft)[None])
        self.normalize = frontend.normalize

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        frames = samples[0][self.positions]
        power = (frames @ self.cosine) ** 2 + (frames @ self.sine) ** 2
        return self.normalize((power @ self.filterbank).clamp_min(LOG_FLOOR).log()).unsqueeze(0)


class EncoderProgram(torch.nn.Module):
    """One streaming chunk through the transcriber with the cache as fixed-size state tensors."""

    segment_step: torch.Tensor  # a buffer (register_buffer below)

    def __init__(self, model: RNNT, shape: StreamingShape) -> None:
        super().__init__()
        self.transcriber = model.transcriber
        self.shape = shape
        # A tensor, not a Python int: ExecuTorch's int8 flow turns `processed + int` into a float output.
        self.register_buffer("segment_step", torch.tensor([shape.segment]), persistent=False)

    def forward(
        self, chunk: torch.Tensor, left_keys: torch.Tensor, left_values: torch.Tensor, *state: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """`state` is (memory, processed) with memory, else (processed,); returns the encoder frames
        [1, segment, encoding_dim] and the next state in the same order as the inputs after `chunk`."""
        memory, processed = (state[0], state[1]) if self.shape.memory else (None, state[0])
        transcriber, emformer, s = self.transcriber, self.transcriber.transformer, self.shape
        reduced, _ = transcriber.time_reduction(transcriber.input_linear(chunk), torch.ones(1, dtype=torch.long))
        frames = reduced.permute(1, 0, 2)
        utterance, right_context = frames[: s.segment], frames[s.segment :]
        mems = (
            emformer.memory_op(utterance.permute(1, 2, 0)).permute(2, 0, 1)
            if s.memory
            else utterance.new_zeros(0, 1, s.width)
        )
        masked = self._masked_columns(processed, right_context.size(0))
        next_keys, next_values, next_memory = [], [], []
        for index, layer in enumerate(emformer.emformer_layers):
            layer_memory = memory[index] if memory is not None else utterance.new_zeros(0, 1, s.width)
            norm_utterance, norm_right = layer._apply_pre_attention_layer_norm(utterance, right_context)
            layer_keys, layer_values = self._layer_cache(layer, left_keys[index], left_values[index])
            attended, mems_out, keys, values = self._attend(
                layer, norm_utterance, norm_right, layer_memory, layer_keys, layer_values, masked
            )
            if s.memory:
                next_memory.append(torch.cat([layer_memory, mems])[-s.memory :])
            next_keys.append(self._padded(torch.cat([layer_keys, keys])[-s.left_context :]))
            next_values.append(self._padded(torch.cat([layer_values, values])[-s.left_context :]))
            utterance, right_context = layer._apply_post_attention_ffn(attended, utterance, right_context)
            mems = mems_out
        encodings = transcriber.layer_norm(transcriber.output_linear(utterance.permute(1, 0, 2)))
        state_out = [torch.stack(next_keys), torch.stack(next_values)]
        if s.memory:
            state_out.append(torch.stack(next_memory))
        return (encodings, *state_out, processed + self.segment_step)

    def _layer_cache(
        self, layer: _EmformerLayer, keys: torch.Tensor, values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A structured model's layer may keep fewer heads than the widest: its cache is the first
        (heads x head width) columns of the shared state tensors, the rest zero. (No op is traced for a
        layer as wide as the cache: every layer of an unsliced model.)"""
        width = layer.attention.input_dim
        return (keys, values) if width == self.shape.cache_width else (keys[..., :width], values[..., :width])

    def _padded(self, rows: torch.Tensor) -> torch.Tensor:
        missing = self.shape.cache_width - rows.size(-1)
        return rows if missing == 0 else torch.nn.functional.pad(rows, (0, missing))

    def _masked_columns(self, processed: torch.Tensor, right_frames: int) -> torch.Tensor:
        """[queries, keys] True where a key is a cache row not yet filled (or memory, for the summary
        query, as torchaudio masks it). Keys: memory, right context, left-context cache, segment."""
        s = self.shape
        filled_memory = torch.clamp(
            torch.div(processed + s.segment - 1, s.segment, rounding_mode="floor"), max=s.memory
        )
        filled_left = torch.clamp(processed, max=s.left_context)
        memory_columns = torch.arange(s.memory) < (s.memory - filled_memory)
        left_columns = torch.arange(s.left_context) < (s.left_context - filled_left)
        columns = torch.cat(
            [
                memory_columns,
                torch.zeros(right_frames, dtype=torch.bool),
                left_columns,
                torch.zeros(s.segment, dtype=torch.bool),
            ]
        )
        queries = right_frames + s.segment + (1 if s.memory else 0)
        masked = columns.unsqueeze(0).expand(queries, -1)
        if s.memory:
            summary_row = columns | (torch.arange(columns.numel()) < s.memory)
            masked = torch.cat([masked[:-1], summary_row.unsqueeze(0)])
        return masked

    def _attend(
        self,
        layer: _EmformerLayer,
        utterance: torch.Tensor,
        right_context: torch.Tensor,
        memory: torch.Tensor,
        left_keys: torch.Tensor,
        left_values: torch.Tensor,
        masked: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """torchaudio's `_EmformerAttention._forward_impl` for batch 1 over the full-size cache; returns
        the attended right context and segment, the next memory, and the segment's keys and values."""
        attention, s = layer.attention, self.shape
        summary = (
            layer.memory_op(utterance.permute(1, 2, 0)).permute(2, 0, 1)[:1]
            if s.memory
            else utterance.new_zeros(0, 1, s.width)
        )
        query = attention.emb_to_query(torch.cat([right_context, utterance, summary]))
        key, value = attention.emb_to_key_value(torch.cat([memory, right_context, utterance])).chunk(2, dim=2)
        before_cache = memory.size(0) + right_context.size(0)
        keys = torch.cat([key[:before_cache], left_keys, key[before_cache:]])
        values = torch.cat([value[:before_cache], left_values, value[before_cache:]])
        heads, head_width = attention.num_heads, attention.input_dim // attention.num_heads
        q, k, v = [t.contiguous().view(-1, heads, head_width).transpose(0, 1) for t in (query, keys, values)]
        weights = torch.bmm(q * attention.scaling, k.transpose(1, 2))
        probs = attention._gen_attention_probs(weights, masked, None)
        attended = torch.bmm(probs, v).transpose(0, 1).contiguous().view(-1, 1, attention.input_dim)
        projected = attention.out_proj(attended)
        rows = right_context.size(0) + utterance.size(0)
        mems_out = projected[rows:]
        mems_out = torch.tanh(mems_out) if attention.tanh_on_mem else torch.clamp(mems_out, min=-10, max=10)
        return projected[:rows], mems_out, key[before_cache:], value[before_cache:]


class PredictorProgram(torch.nn.Module):
    """One token through the predictor with its LSTM state as two stacked tensors."""

    def __init__(self, model: RNNT) -> None:
        super().__init__()
        self.predictor = model.predictor

    def forward(
        self, token: torch.Tensor, hidden: torch.Tensor, cell: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        state = [[hidden[index], cell[index]] for index in range(hidden.size(0))]
        out, _, state_out = self.predictor(token, torch.ones(1, dtype=torch.long), state)
        return out, torch.stack([h for h, _ in state_out]), torch.stack([c for _, c in state_out])


class JoinerProgram(torch.nn.Module):
    """One encoder frame [1, 1, D] and one predictor output [1, 1, D] -> logits [1, symbols]."""

    def __init__(self, model: RNNT) -> None:
        super().__init__()
        self.joiner = model.joiner

    def forward(self, encoding: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        ones = torch.ones(1, dtype=torch.long)
        logits, _, _ = self.joiner(encoding, ones, prediction, ones)
        return logits[:, 0, 0]


@dataclass(frozen=True)
class Programs:
    """The modules and one example input each (what an exporter traces)."""

    features: FeaturesProgram
    encoder: EncoderProgram
    predictor: PredictorProgram
    joiner: JoinerProgram
    shape: StreamingShape

    def examples(self) -> dict[str, tuple[torch.Tensor, ...]]:
        s = self.shape
        state = tuple(
            torch.zeros(shape, dtype=torch.long if name == "processed" else torch.float32)
            for name, shape in s.encoder_state().items()
        )
        predictor_state = tuple(torch.zeros(shape) for shape in s.predictor_state().values())
        return {
            "features": (torch.zeros(1, s.block_samples),),
            "encoder": (torch.zeros(1, s.chunk_frames, s.n_mels), *state),
            "predictor": (torch.zeros(1, 1, dtype=torch.long), *predictor_state),
            "joiner": (torch.zeros(1, 1, s.encoding_dim), torch.zeros(1, 1, s.encoding_dim)),
        }

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"features": self.features, "encoder": self.encoder, "predictor": self.predictor, "joiner": self.joiner}


def streaming_shape(model: RNNT, model_config: ModelConfig, frontend: Frontend) -> StreamingShape:
    mel = frontend.logmel.mel
    emformer = model.transcriber.transformer
    lstm = model.predictor.lstm_layers
    return StreamingShape(
        chunk_frames=model_config["segment_length"] + model_config["right_context_length"],
        segment_frames=model_config["segment_length"],
        stride=model_config["time_reduction_stride"],
        layers=len(emformer.emformer_layers),
        width=emformer.emformer_layers[0].layer_norm_input.normalized_shape[0],
        key_width=max(layer.attention.input_dim for layer in emformer.emformer_layers),
        left_context=emformer.left_context_length,
        memory=emformer.max_memory_size,
        segment=emformer.segment_length,
        predictor_layers=len(lstm),
        predictor_width=lstm[0].hidden_dim,
        encoding_dim=model_config["encoding_dim"],
        num_symbols=model_config["num_symbols"],
        n_mels=mel.n_mels,
        n_fft=mel.n_fft,
        hop_length=mel.hop_length,
        sample_rate=mel.sample_rate,
    )


def build_programs(model: RNNT, model_config: ModelConfig, frontend: Frontend) -> Programs:
    """The programs of one (eval-mode) model; they share its weights."""
    shape = streaming_shape(model, model_config, frontend)
    return Programs(
        FeaturesProgram(frontend, shape.segment_frames).eval(),
        EncoderProgram(model, shape).eval(),
        PredictorProgram(model).eval(),
        JoinerProgram(model).eval(),
        shape,
    )
