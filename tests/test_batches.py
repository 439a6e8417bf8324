"""Training batches: bounded by the joiner's output size (train.max_logits), built and augmented in
loader workers exactly as in-process, resumable; and bf16 forward passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from omni import job_params
from omni.asr.frontend import Frontend
from omni.asr.model import blank_id, build_model, model_config_from
from omni.asr.trainer import StepLoss
from omni.data.augment import WaveAugment
from omni.data.batches import BatchStream, LogitsBound, UtteranceSet, bucket_batches
from omni.data.features import LogMel, load_feature_stats
from omni.data.manifest import read_manifest
from omni.data.tokenizer import Tokenizer
from omni.jobs.specs import DenseJob
from omni.jobs.training import run_training_job
from tests.conftest import PreparedData, paths, training_setup

BUDGET_FRAMES = 3000


def _stream(prepared: PreparedData, bound: LogitsBound | None, clean_steps: int | None = None) -> BatchStream:
    """`clean_steps`: the smoke config's waveform augmentation after that many clean steps (None: none)."""
    sample_rate = prepared.config["data"]["sample_rate"]
    utterances = UtteranceSet(
        read_manifest(prepared.manifests["train"]), Tokenizer(prepared.tokenizer), sample_rate, cache_audio=False
    )
    budget = BUDGET_FRAMES * prepared.config["features"]["hop_length"]
    augment = None if clean_steps is None else WaveAugment(prepared.config["features"]["wave_augment"], sample_rate)
    return BatchStream(
        utterances, budget, seed=5, sortagrad=False, logits_bound=bound, augment=augment, clean_steps=clean_steps or 0
    )


def _bound(prepared: PreparedData, max_elements: int) -> LogitsBound:
    return LogitsBound(
        max_elements=max_elements,
        symbols=30,
        hop_length=prepared.config["features"]["hop_length"],
        stride=4,
        right_context=4,
        slowest_speed=0.9,
    )


def _largest_batch_logits(stream: BatchStream, bound: LogitsBound) -> int:
    batches = stream._epoch_batches()
    return max(
        len(batch)
        * max(stream.lattices[i][0] for i in batch)
        * max(stream.lattices[i][1] for i in batch)
        * bound.symbols
        for batch in batches
    )


def test_batches_stay_within_the_logits_bound(prepared: PreparedData) -> None:
    loose = _bound(prepared, 10**12)
    unbounded = _stream(prepared, loose)
    largest = _largest_batch_logits(unbounded, loose)
    # a loose bound changes nothing: the frame budget alone decides
    assert unbounded._epoch_batches() == _stream(prepared, None)._epoch_batches()
    tight = _bound(prepared, largest // 3)
    bounded = _stream(prepared, tight)
    assert _largest_batch_logits(bounded, tight) <= tight.max_elements
    assert len(bounded._epoch_batches()) > len(unbounded._epoch_batches())
    assert sorted(i for batch in bounded._epoch_batches() for i in batch) == list(range(len(bounded.utterances)))


def test_an_utterance_over_the_bound_alone_is_named(prepared: PreparedData) -> None:
    with pytest.raises(ValueError, match=r"train\.max_logits.*alone needs"):
        _stream(prepared, _bound(prepared, 1000))


def test_the_lattice_counts_the_slowest_speed_and_the_look_ahead() -> None:
    bound = LogitsBound(max_elements=10**9, symbols=33, hop_length=160, stride=4, right_context=4, slowest_speed=0.9)
    # 1 s at 16 kHz played at 0.9x: 17,777 samples -> 111 + 1 frames + 4 look-ahead -> 29 encoder frames
    assert bound.lattice(16000, 10) == (29, 11)
    assert bucket_batches([16000] * 6, 10**9, 0, 0, lattices=[(29, 11)] * 6, max_lattice=2 * 29 * 11) == bucket_batches(
        [16000] * 6, 2 * 16000, 0, 0
    )


def test_a_training_job_with_the_bound_trains_on_its_batches(prepared: PreparedData, tmp_path: Path) -> None:
    config = json.loads(json.dumps(prepared.config))
    config["train"]["max_logits"] = 2_000_000
    setup = training_setup(config, "dense")
    assert setup.training.max_logits == 2_000_000
    off = prepared.config
    assert "max_logits" not in job_params.training(off, "dense", off["seed"]), "off: nothing declared"
    assert training_setup(off, "dense").training.max_logits is None
    job = paths(prepared, tmp_path)
    run_training_job(setup, DenseJob("dense", 2), job, 1)
    assert json.loads(job.cost_out.read_text())["steps"] == 2


def test_bf16_forward_passes_give_fp32_losses_close_to_fp32(prepared: PreparedData) -> None:
    """The autocast path (on a CPU here; the pipeline turns it on for CUDA only)."""
    setup = training_setup(prepared.config, "dense")
    tokenizer = Tokenizer(prepared.tokenizer)
    model_config = model_config_from(dict(setup.model), num_symbols=tokenizer.vocab_size + 1)
    torch.manual_seed(0)
    model = build_model(model_config).eval()
    frontend = Frontend(
        LogMel.from_section(setup.logmel),
        load_feature_stats(prepared.feature_stats),
        model_config["right_context_length"],
    )
    utterances = UtteranceSet(
        read_manifest(prepared.manifests["train"]), tokenizer, setup.logmel["sample_rate"], cache_audio=False
    )
    batch = utterances.collate(range(4))
    blank = blank_id(model_config)
    full = StepLoss(model, frontend, batch, blank)().detach()
    half = StepLoss(model, frontend, batch, blank, bf16=True)
    loss = half().detach()
    assert loss.dtype == torch.float32 and half.last_logits.dtype == torch.float32
    assert float(loss) != float(full), "the forward ran in bfloat16"
    assert abs(float(loss) - float(full)) < 0.02 * abs(float(full)), (float(loss), float(full))


CLEAN_STEPS = 2


def _same(a: list, b: list) -> bool:
    return all(
        x.utt_ids == y.utt_ids
        and torch.equal(x.waveforms, y.waveforms)
        and torch.equal(x.targets, y.targets)
        and torch.equal(x.wave_lengths, y.wave_lengths)
        and x.augment_seed == y.augment_seed
        for x, y in zip(a, b, strict=True)
    )


def test_loader_workers_give_the_same_augmented_batches_and_position(prepared: PreparedData) -> None:
    """Batches decoded and augmented in DataLoader workers, ahead of training, are the in-process ones
    (the global RNG plays no part), and the position a checkpoint stores counts only the batches
    handed out."""

    def batches(workers: int, count: int) -> tuple[list, dict]:
        stream = _stream(prepared, None, CLEAN_STEPS)
        stream.workers = workers
        torch.manual_seed(workers)
        taken = [batch for _, batch in zip(range(count), stream)]
        return taken, stream.state_dict()

    steps = len(_stream(prepared, None)._epoch_batches()) + 2  # into the second epoch
    inline, inline_state = batches(0, steps)
    loaded, loaded_state = batches(2, steps)
    assert loaded_state == inline_state and inline_state == {"epoch": 1, "position": 2, "steps": steps}
    assert _same(inline, loaded)
    assert [batch.augment_seed is None for batch in inline] == [step < CLEAN_STEPS for step in range(steps)]
    clean = [batch for _, batch in zip(range(steps), _stream(prepared, None))]
    assert _same(inline[:CLEAN_STEPS], clean[:CLEAN_STEPS])
    perturbed = [not torch.equal(a.waveforms, b.waveforms) for a, b in zip(inline, clean)][CLEAN_STEPS:]
    assert any(perturbed), "the smoke config's speed and noise perturbation"


def test_a_resumed_stream_hands_out_the_same_augmented_batches(prepared: PreparedData) -> None:
    whole = [batch for _, batch in zip(range(6), _stream(prepared, None, CLEAN_STEPS))]
    first = _stream(prepared, None, CLEAN_STEPS)
    _ = [batch for _, batch in zip(range(3), first)]
    resumed = _stream(prepared, None, CLEAN_STEPS)
    resumed.load_state_dict(first.state_dict())
    assert _same([batch for _, batch in zip(range(3), resumed)], whole[3:])
