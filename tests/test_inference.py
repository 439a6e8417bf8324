"""The sparse inference path: a pruned model whose masked linears run on sparse kernels gives the
masked dense model's outputs on real LibriSpeech utterances, full-utterance and streaming; each
kernel is exact on its own; a layer keeps dense unless a sparse kernel is clearly faster."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from omni import job_params
from omni.asr.decode import StreamingChunks, greedy_streaming
from omni.asr.frontend import Frontend
from omni.asr.model import blank_id, load_model
from omni.data.audio import read_audio
from omni.data.features import LogMel, load_feature_stats
from omni.data.manifest import read_manifest
from omni.inference.quantize import int8_dense_remainder
from omni.inference.sparse_linear import (
    BANDED,
    BSR,
    CSR,
    DENSE,
    SPARSE_MARGIN,
    CompressedLinear,
    candidates,
    fastest_kernel,
)
from omni.inference.sparse_model import copy_sharing_kernels, sparse_inference_model, streaming_chunk_rows
from omni.inference.speed import StreamingSpeed, Utterance, eager_decoder, time_streaming
from omni.jobs.device_metrics import DeviceMetricsPaths, run_device_metrics_job
from omni.jobs.specs import mask_spec
from omni.sparsity.export import export_compact, save_compact
from omni.sparsity.masks import apply_masks_, masks_at, prunable_parameter_names, rank_layers, unit_shape
from tests.conftest import LIBRISPEECH_SAMPLE, PreparedData

UTTERANCES = 4
SAMPLE_RATE = 16000  # LibriSpeech's
TOLERANCE = dict(rtol=1e-4, atol=1e-4)  # float32 sums in another order
INT8_TOLERANCE = 0.1  # int8 rounding of weights and activations, relative to the largest output


def _real_audio(count: int) -> list[torch.Tensor]:
    flacs = sorted((LIBRISPEECH_SAMPLE / "test-other").rglob("*.flac"))[:count]
    if len(flacs) < count:
        pytest.skip(f"no LibriSpeech sample at {LIBRISPEECH_SAMPLE}")
    return [read_audio(path, SAMPLE_RATE, resample=False) for path in flacs]


def _pruned(dense_model: Path, prepared: PreparedData, granularity: str, block_shape: list[int], level: float):
    model, artefact = load_model(dense_model)
    names = prunable_parameter_names(model, mask_spec(job_params.masks(prepared.config)))
    masks = masks_at(rank_layers(model, names, granularity, block_shape), level)
    apply_masks_(model, masks)
    return model, artefact["model_config"], masks


@pytest.mark.parametrize(
    ("granularity", "block_shape", "kernel"),
    [("unstructured", [1, 1], CSR), ("block", [4, 4], BSR), ("block", [8, 1], BANDED)],
)
def test_the_sparse_path_equals_the_masked_model_on_real_utterances(
    prepared: PreparedData, dense_model: Path, granularity: str, block_shape: list[int], kernel: str
) -> None:
    masked, model_config, masks = _pruned(dense_model, prepared, granularity, block_shape, 0.8)
    sparse, layers = sparse_inference_model(
        masked,
        masks,
        unit_shape(granularity, block_shape),
        streaming_chunk_rows(model_config),
        repeats=1,
        allowed=(kernel,),
    )
    assert [layer.weight for layer in layers] == list(masks) and {layer.choice.kernel for layer in layers} == {kernel}
    assert all(layer.density == pytest.approx(0.2, abs=0.02) for layer in layers)

    logmel = job_params.logmel(prepared.config)
    assert logmel["sample_rate"] == SAMPLE_RATE
    frontend = Frontend(
        LogMel.from_section(logmel), load_feature_stats(prepared.feature_stats), model_config["right_context_length"]
    )
    chunks = StreamingChunks(model_config["segment_length"], model_config["right_context_length"])
    blank = blank_id(model_config)
    for wave in _real_audio(UTTERANCES):
        feats, lengths = frontend.features(wave[None], torch.tensor([wave.numel()]))
        padded = frontend.pad_right_context(feats)
        with torch.inference_mode():
            full_masked, _ = masked.transcribe(padded, lengths)
            full_sparse, _ = sparse.transcribe(padded, lengths)
        torch.testing.assert_close(full_sparse, full_masked, **TOLERANCE)
        masked_state = sparse_state = None
        for chunk, valid in chunks.split(feats, int(lengths[0])):
            valid_length = torch.tensor([valid])
            with torch.inference_mode():
                expected, _, masked_state = masked.transcribe_streaming(chunk, valid_length, masked_state)
                got, _, sparse_state = sparse.transcribe_streaming(chunk, valid_length, sparse_state)
            torch.testing.assert_close(got, expected, **TOLERANCE)
        assert greedy_streaming(sparse, feats, int(lengths[0]), blank, chunks) == greedy_streaming(
            masked, feats, int(lengths[0]), blank, chunks
        )


@pytest.mark.parametrize(
    ("unit", "kernels"), [((1, 1), {DENSE, CSR}), ((4, 4), {DENSE, CSR, BSR}), ((8, 1), {DENSE, CSR, BANDED})]
)
def test_every_candidate_kernel_is_exact_on_any_leading_shape(unit: tuple[int, int], kernels: set[str]) -> None:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(32, 24, generator=generator)
    units = torch.rand(32 // unit[0], 24 // unit[1], generator=generator) < 0.3
    weight = weight * units.repeat_interleave(unit[0], 0).repeat_interleave(unit[1], 1)
    bias = torch.randn(32, generator=generator)
    x = torch.randn(5, 2, 24, generator=generator)
    options = candidates(weight, bias, unit)
    assert set(options) == kernels
    for name, make in options.items():
        torch.testing.assert_close(make()(x), torch.nn.functional.linear(x, weight, bias), **TOLERANCE, msg=name)


def test_a_layer_stays_dense_unless_a_sparse_kernel_is_clearly_faster() -> None:
    assert fastest_kernel({DENSE: 1.0, CSR: 1.2, BSR: 0.99}) == DENSE
    assert fastest_kernel({DENSE: 1.0, CSR: SPARSE_MARGIN, BSR: 0.5}) == BSR
    assert fastest_kernel({DENSE: 1.0, CSR: 0.6}) == CSR
    assert fastest_kernel({BANDED: 3.0}) == BANDED, "forced"


def test_a_mask_on_something_else_than_a_linear_is_named(prepared: PreparedData, dense_model: Path) -> None:
    model, artefact = load_model(dense_model)
    masks = {"predictor.embedding.weight": torch.ones_like(model.predictor.embedding.weight, dtype=torch.bool)}
    with pytest.raises(ValueError, match="predictor.embedding.weight"):
        sparse_inference_model(copy.deepcopy(model), masks, (1, 1), 5, repeats=1)


class _Logged:
    """A model that notes its name at each streaming chunk it encodes."""

    def __init__(self, model: torch.nn.Module, name: str, calls: list[str]) -> None:
        self._model, self._name, self._calls = model, name, calls

    def transcribe_streaming(self, *args):
        self._calls.append(self._name)
        return self._model.transcribe_streaming(*args)

    def __getattr__(self, attribute: str):
        return getattr(self._model, attribute)


def test_timed_models_take_turns_utterance_by_utterance(prepared: PreparedData, dense_model: Path) -> None:
    model, artefact = load_model(dense_model)
    model_config = artefact["model_config"]
    frontend = Frontend(
        LogMel.from_section(job_params.logmel(prepared.config)),
        load_feature_stats(prepared.feature_stats),
        model_config["right_context_length"],
    )
    utterances = []
    for audio in _real_audio(3):
        feats, lengths = frontend.features(audio[None], torch.tensor([audio.numel()]))
        utterances.append(Utterance(feats, int(lengths[0]), audio.numel() / SAMPLE_RATE))
    calls: list[str] = []
    decoders = {name: eager_decoder(_Logged(model.eval(), name, calls), model_config) for name in "abc"}
    measured = time_streaming(decoders, utterances, threads=1)
    turns = [name for index, name in enumerate(calls) if index == 0 or calls[index - 1] != name]
    assert "".join(turns) == "abc" + "abc" + "bca" + "cab", "warm-up, then each utterance in a rotated order"
    assert measured["a"].hypotheses == measured["b"].hypotheses == measured["c"].hypotheses
    assert all(len(speed.utterance_seconds) == 3 and speed.rtf > 0 for speed in measured.values())


def test_a_speedup_is_the_median_of_paired_utterance_ratios() -> None:
    def speed(seconds: list[float]) -> StreamingSpeed:
        return StreamingSpeed(1.0, 1.0, 1.0, seconds, [[]] * len(seconds))

    dense, sparse = speed([2.0, 4.0, 9.0]), speed([1.0, 2.0, 1.0])  # the third utterance: a slow moment for dense
    assert sparse.speedup_over(dense) == 2.0
    assert dense.speedup_over(dense) == 1.0


def test_device_metrics_time_every_path_and_measure_its_memory(
    prepared: PreparedData, dense_model: Path, tmp_path: Path
) -> None:
    """The job on a pruned model's fp16 export: the sparse path decodes the utterances to the dense
    path's hypotheses, every figure is measured (the memory of each path in a process of its own)."""
    masked, model_config, masks = _pruned(dense_model, prepared, "unstructured", [1, 1], 0.9)
    export = tmp_path / "export_fp16.pt"
    save_compact(
        export, export_compact(masked.state_dict(), masks, model_config, torch.float16, "unstructured", [1, 1])
    )
    out = tmp_path / "speed" / "s0.9.json"
    out.parent.mkdir()
    speed = {"utterances": 2, "kernel_repeats": 2, "peak_memory": True, "batch_size": 4}
    record = run_device_metrics_job(
        speed,
        job_params.logmel(prepared.config),
        "individual",
        1234,
        "s0.9",
        DeviceMetricsPaths(export, prepared.manifests["test-other"], prepared.feature_stats, prepared.tokenizer, out),
        threads=1,
    )
    assert json.loads(out.read_text()) == record
    assert record["sparsity"] == pytest.approx(0.9, abs=0.01) and record["export_bytes"] == export.stat().st_size
    assert record["utterances"] == 2 and record["audio_seconds"] > 0
    assert sum(record["kernels"].values()) == record["masked_linears"] == len(masks)
    assert record["sparse_same_hypotheses"] == 1.0
    for path in ("dense", "sparse", "int8"):
        for threads in ("t1", "tjob"):
            assert 0 < record[f"{path}_{threads}_chunk_ms_mean"] <= record[f"{path}_{threads}_chunk_ms_p95"]
            assert record[f"{path}_{threads}_rtf"] > 0
            if path != "dense":
                assert record[f"{path}_speedup_{threads}"] > 0
        assert record[f"{path}_peak_rss_mb"] > record[f"{path}_model_rss_mb"] > 0
    assert record["wer_utterances"] == len(read_manifest(prepared.manifests["test-other"]))
    assert record["fp16_wer"] >= 0 and record["int8_wer"] >= 0
    assert list(out.parent.iterdir()) == [out], "the memory probe's files are gone"


def test_int8_dense_remainder_quantises_dense_linears_and_keeps_sparse_kernels(
    prepared: PreparedData, dense_model: Path
) -> None:
    masked, model_config, masks = _pruned(dense_model, prepared, "unstructured", [1, 1], 0.9)
    sparse, layers = sparse_inference_model(
        masked, masks, (1, 1), streaming_chunk_rows(model_config), repeats=1, allowed=(CSR,)
    )
    int8 = int8_dense_remainder(copy_sharing_kernels(sparse, layers))
    kinds = {type(module) for module in int8.modules()}
    assert CompressedLinear in kinds and torch.ao.nn.quantized.dynamic.Linear in kinds and torch.nn.Linear not in kinds
    assert any(isinstance(module, torch.nn.Linear) for module in sparse.modules()), "the source is left as it was"
    shared = [name.removesuffix(".weight") for name in masks]
    assert all(int8.get_submodule(name) is sparse.get_submodule(name) for name in shared), "kernels shared, not copied"
    inputs = torch.randn(1, 40, model_config["input_dim"])
    with torch.inference_mode():
        expected, _ = sparse.transcribe(inputs, torch.tensor([40]))
        quantised, _ = int8.transcribe(inputs, torch.tensor([40]))
    assert (quantised - expected).abs().max() < INT8_TOLERANCE * expected.abs().max()
