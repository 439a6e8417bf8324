"""The on-device exports: each streaming program equals the PyTorch model over many chunks with its
state fed back, on real LibriSpeech utterances; ONNX Runtime and ExecuTorch decode the transcript
PyTorch decodes (fp32), int8 within its stated tolerance; `transcribe` runs without torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jiwer
import numpy as np
import pytest
import torch

from omni import job_params
from omni.asr.decode import StreamingChunks, greedy_streaming
from omni.asr.frontend import Frontend
from omni.asr.model import blank_id, build_model, load_model
from omni.data.audio import read_audio
from omni.data.features import LogMel, load_feature_stats
from omni.data.manifest import read_manifest
from omni.data.tokenizer import Tokenizer
from omni.deploy.bundle import read_bundle
from omni.deploy.export import export_bundle
from omni.deploy.programs import build_programs
from omni.deploy.recognizer import FeatureStream, load_programs, recognize_frames, recognize_stream
from omni.jobs.device_metrics import DeviceMetricsPaths, run_device_metrics_job
from omni.sparsity.export import export_compact, save_compact
from tests.conftest import LIBRISPEECH_SAMPLE, REPO, PreparedData

UTTERANCES = 3
MIN_CHUNKS = 10
TOLERANCE = 1e-4  # float32 sums in another order (the bound for every program)
# The runtime's front end against torch's FFT: equal but for the quietest mel bins of a frame, where
# float32 rounding of the spectrum dominates a power near the log floor (torch's own fp32 FFT is off
# float64 by as much there: 9e-4 at most on a LibriSpeech utterance).
FEATURE_MEDIAN, FEATURE_P99 = 1e-5, 2e-3
# int8: weights and activations rounded to 8 bits; relative to the largest output of the fp32 program.
INT8_RELATIVE = 0.1
# The untrained test model emits only blanks; lowering the blank's joiner bias by this much makes the
# search emit a symbol at most frames, so the comparison exercises the predictor and the joiner loop.
BLANK_BIAS_SHIFT = 4.0
VARIANTS = ("onnx", "onnx-int8", "executorch", "executorch-int8")


def _utterances(count: int) -> list[Path]:
    flacs = sorted((LIBRISPEECH_SAMPLE / "test-other").rglob("*.flac"))[:count]
    if len(flacs) < count:
        pytest.skip(f"no LibriSpeech sample at {LIBRISPEECH_SAMPLE}")
    return flacs


@pytest.fixture(scope="module")
def emitting_model(prepared: PreparedData, dense_model: Path) -> tuple[torch.nn.Module, dict, Frontend]:
    model, artefact = load_model(dense_model)
    model_config = artefact["model_config"]
    with torch.no_grad():
        model.joiner.linear.bias[blank_id(model_config)] -= BLANK_BIAS_SHIFT
    frontend = Frontend(
        LogMel.from_section(job_params.logmel(prepared.config)),
        load_feature_stats(prepared.feature_stats),
        model_config["right_context_length"],
    )
    return model, model_config, frontend


@pytest.fixture(scope="module")
def bundle_folder(emitting_model, prepared: PreparedData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, model_config, frontend = emitting_model
    folder = tmp_path_factory.mktemp("bundle")
    export_bundle(model, model_config, frontend, Tokenizer(prepared.tokenizer), folder)
    return folder


def _features(frontend: Frontend, path: Path) -> torch.Tensor:
    wave = read_audio(path, frontend.logmel.mel.sample_rate, resample=False)
    feats, _ = frontend.features(wave[None], torch.tensor([wave.numel()]))
    return feats


def _chunks(model_config: dict, feats: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
    return StreamingChunks(model_config["segment_length"], model_config["right_context_length"]).split(
        feats, feats.size(1)
    )


def test_the_encoder_program_equals_torchaudio_streaming_with_and_without_memory() -> None:
    """The full-size cache with masked rows is torchaudio's sliced cache: every chunk's encodings equal,
    the state fed back, also for an Emformer with memory vectors (which no preset uses)."""
    for memory in (0, 3):
        model_config = {
            "input_dim": 20,
            "encoding_dim": 24,
            "num_symbols": 11,
            "segment_length": 8,
            "right_context_length": 4,
            "time_reduction_input_dim": 8,
            "time_reduction_stride": 2,
            "num_heads": 2,
            "ffn_dim": 32,
            "num_layers": 3,
            "dropout": 0.0,
            "activation": "gelu",
            "left_context_length": 6,
            "max_memory_size": memory,
            "symbol_embedding_dim": 16,
            "num_lstm_layers": 2,
            "lstm_dropout": 0.0,
        }
        torch.manual_seed(memory)
        model = build_model(model_config).eval()
        logmel = {"sample_rate": 16000, "n_mels": 20, "n_fft": 400, "hop_length": 160}
        frontend = Frontend(LogMel.from_section(logmel), {"mean": [0.0] * 20, "std": [1.0] * 20}, 4)
        programs = build_programs(model, model_config, frontend)
        feats = torch.randn(1, 8 * 14 + 3, 20)
        state = programs.examples()["encoder"][1:]
        reference_state = None
        chunks = _chunks(model_config, feats)
        assert len(chunks) >= MIN_CHUNKS
        with torch.inference_mode():
            for chunk, valid in chunks:
                expected, lengths, reference_state = model.transcribe_streaming(
                    chunk, torch.tensor([valid]), reference_state
                )
                encodings, *state = programs.encoder(chunk, *state)
                frames = int(lengths[0])
                assert frames == programs.shape.valid_encoder_frames(valid - 4)
                torch.testing.assert_close(encodings[:, :frames], expected[:, :frames], rtol=0, atol=TOLERANCE)


def test_each_runtime_program_equals_pytorch_over_chunks_of_real_utterances(emitting_model, bundle_folder) -> None:
    model, model_config, frontend = emitting_model
    bundle = read_bundle(bundle_folder)
    reference = build_programs(model, model_config, frontend)
    for variant in VARIANTS:
        programs = load_programs(bundle, variant)
        tolerance = TOLERANCE
        for path in _utterances(UTTERANCES):
            feats = _features(frontend, path)
            chunks = _chunks(model_config, feats)
            assert len(chunks) >= MIN_CHUNKS
            state = [t.numpy() for t in reference.examples()["encoder"][1:]]
            expected_state = list(reference.examples()["encoder"][1:])
            hidden, cell = (torch.zeros(dims) for dims in bundle.shape.predictor_state().values())
            worst = {name: 0.0 for name in ("encoder", "predictor", "joiner")}
            scale = {name: 0.0 for name in worst}
            for index, (chunk, _) in enumerate(chunks):
                with torch.inference_mode():
                    expected, *expected_state = reference.encoder(chunk, *expected_state)
                encodings, *state = programs["encoder"](chunk.numpy(), *state)
                if "int8" not in variant:  # fp32: every output, the state included, and fed back
                    for ours, theirs in zip([encodings, *state], [expected, *expected_state]):
                        np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=TOLERANCE)
                worst["encoder"] = max(worst["encoder"], float(np.abs(encodings - expected.numpy()).max()))
                scale["encoder"] = max(scale["encoder"], float(expected.abs().max()))
                token = torch.tensor([[index % (bundle.shape.num_symbols - 1)]])
                ours_prediction, *_ = programs["predictor"](token.numpy(), hidden.numpy(), cell.numpy())
                with torch.inference_mode():
                    prediction, hidden, cell = reference.predictor(token, hidden, cell)
                    logits = reference.joiner(expected[:, :1], prediction)
                ours_logits = programs["joiner"](expected[:, :1].numpy(), prediction.numpy())[0]
                for name, ours, theirs in (("predictor", ours_prediction, prediction), ("joiner", ours_logits, logits)):
                    worst[name] = max(worst[name], float(np.abs(ours - theirs.numpy()).max()))
                    scale[name] = max(scale[name], float(theirs.abs().max()))
            for name in worst:
                bound = INT8_RELATIVE * scale[name] if "int8" in variant else tolerance
                assert worst[name] <= bound, (variant, name, worst[name], bound)


def test_the_runtime_front_end_gives_torchs_features_from_any_block_size(emitting_model, bundle_folder) -> None:
    _, _, frontend = emitting_model
    bundle = read_bundle(bundle_folder)
    path = _utterances(1)[0]
    expected = _features(frontend, path)[0].numpy()
    wave = read_audio(path, bundle.shape.sample_rate, resample=False).numpy()
    for variant in ("onnx", "executorch"):
        features = load_programs(bundle, variant)["features"]
        for block in (160, 1000, 4097, len(wave)):
            stream = FeatureStream(bundle, features)
            frames = [stream.push(wave[start : start + block]) for start in range(0, len(wave), block)]
            frames = np.concatenate([*frames, stream.finish()])
            assert frames.shape == expected.shape, (variant, block)
            error = np.abs(frames - expected)
            assert np.median(error) <= FEATURE_MEDIAN and np.percentile(error, 99) <= FEATURE_P99, (variant, block)


def test_the_runtimes_decode_pytorchs_transcript(emitting_model, bundle_folder) -> None:
    """Same features in: fp32 runtimes give PyTorch's greedy streaming tokens exactly; int8 nearly.
    From the audio (the runtime's own front end): the same tokens in fp32."""
    model, model_config, frontend = emitting_model
    bundle = read_bundle(bundle_folder)
    chunks = StreamingChunks(model_config["segment_length"], model_config["right_context_length"])
    references = []
    for path in _utterances(UTTERANCES):
        feats = _features(frontend, path)
        references.append((path, feats, greedy_streaming(model, feats, feats.size(1), blank_id(model_config), chunks)))
    assert all(len(tokens) > 20 for _, _, tokens in references)  # the search emits: the comparison means something
    for variant in VARIANTS:
        programs = load_programs(bundle, variant)
        for path, feats, expected in references:
            tokens = recognize_frames(bundle, programs, feats[0].numpy()).tokens
            if "int8" in variant:
                assert _token_error_rate(tokens, expected) <= 0.25, variant
                continue
            assert tokens == expected, (variant, path.name)
            wave = read_audio(path, bundle.shape.sample_rate, resample=False).numpy()
            blocks = (wave[start : start + 1600] for start in range(0, len(wave), 1600))
            *_, (recognizer, final) = recognize_stream(bundle, programs, blocks)
            assert final and recognizer.tokens == expected, (variant, path.name)


def _token_error_rate(ours: list[int] | list[str], theirs: list[int] | list[str]) -> float:
    """The edit distance between two token sequences over the second's length (jiwer, as the scoring)."""
    return jiwer.wer(" ".join(map(str, theirs)), " ".join(map(str, ours)))


def test_transcribe_streams_a_file_without_torch(emitting_model, bundle_folder, tmp_path: Path) -> None:
    """The console command on a LibriSpeech FLAC and on raw PCM from stdin, in a Python where importing
    torch fails: the ONNX path needs numpy and onnxruntime only."""
    model, model_config, frontend = emitting_model
    bundle = read_bundle(bundle_folder)
    path = _utterances(1)[0]
    feats = _features(frontend, path)
    chunks = StreamingChunks(model_config["segment_length"], model_config["right_context_length"])
    expected = bundle.text(greedy_streaming(model, feats, feats.size(1), blank_id(model_config), chunks))
    blocker = tmp_path / "no_torch"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch is not installed on this device')\n")
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{REPO}"}
    command = [sys.executable, "-m", "omni.deploy.transcribe", str(bundle_folder), "--runtime", "onnx", "--partials"]
    result = subprocess.run([*command, str(path)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == f"final\t{path}\t{expected}"
    assert any(line.startswith("partial\t") for line in lines[:-1])
    assert "ms p95 per chunk" in result.stderr and "real-time factor" in result.stderr
    pcm = (read_audio(path, bundle.shape.sample_rate, resample=False).numpy() * 32768).clip(-32768, 32767)
    result = subprocess.run(
        [*command, "-"], input=pcm.astype("<i2").tobytes(), capture_output=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr.decode()
    final = result.stdout.decode().splitlines()[-1].split("\t")[2]
    assert final == expected or _token_error_rate(final.split(), expected.split()) <= 0.1


def test_transcribe_names_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "omni.deploy.transcribe", str(tmp_path), "x.wav"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert str(tmp_path / "deploy.json") in result.stderr and "not an exported model" in result.stderr


def test_device_metrics_measure_every_runtime_against_the_best_dense_runtime(
    emitting_model, bundle_folder, prepared: PreparedData, tmp_path: Path
) -> None:
    """The job with a bundle: every runtime path timed beside the eager ones, the reference the fastest
    runtime path, the fp32 runtimes transcribing the timed utterances as eager dense does, their WER on
    the whole split measured from the audio, their files' sizes and peak memory recorded."""
    model, model_config, _ = emitting_model
    export = tmp_path / "export_fp16.pt"
    save_compact(export, export_compact(model.state_dict(), {}, model_config, torch.float32, "unstructured", [1, 1]))
    out = tmp_path / "speed" / "dense.json"
    out.parent.mkdir()
    speed = {"utterances": 2, "kernel_repeats": 2, "peak_memory": True, "batch_size": 4}
    record = run_device_metrics_job(
        speed,
        job_params.logmel(prepared.config),
        "dense",
        1234,
        "dense",
        DeviceMetricsPaths(
            export, prepared.manifests["test-other"], prepared.feature_stats, prepared.tokenizer, out, bundle_folder
        ),
        threads=1,
    )
    runtime_paths = ["onnx", "onnx_int8", "executorch", "executorch_int8"]
    assert record["reference_t1"] in runtime_paths and record[f"{record['reference_t1']}_speedup_t1"] == 1.0
    for path in runtime_paths:
        assert record[f"{path}_t1_chunk_ms_mean"] > 0 and record[f"{path}_peak_rss_mb"] > 0
        assert 0 < record[f"{path}_download_bytes"] < record[f"{path}_file_bytes"]
        assert record[f"{path}_wer"] >= 0  # above 1 too: the test model inserts words
    assert record["onnx_same_hypotheses"] == record["executorch_same_hypotheses"] == 1.0
    assert record["onnx_wer"] == record["executorch_wer"], "both fp32 runtimes decode the split alike"
    assert record["wer_utterances"] == len(read_manifest(prepared.manifests["test-other"]))
    assert record["onnx_int8_file_bytes"] < record["onnx_file_bytes"]  # the fp32 front end is shared


def test_a_bundle_writes_the_words_sentencepiece_decodes(bundle_folder, prepared: PreparedData) -> None:
    """The device turns ids into text without sentencepiece: the same words, unk included."""
    bundle, tokenizer = read_bundle(bundle_folder), Tokenizer(prepared.tokenizer)
    generator = np.random.default_rng(0)
    for length in (0, 1, 5, 40, 200):
        ids = generator.integers(0, tokenizer.vocab_size, length).tolist()
        assert bundle.text(ids).split() == tokenizer.decode(ids).split(), ids
