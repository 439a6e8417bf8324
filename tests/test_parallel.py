"""Data-parallel training (torchrun + DDP on gloo): ranks share one batch order, train as one process on
their global batch would, and a failing rank fails the job promptly."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from omni import job_params
from omni.asr.frontend import Frontend
from omni.asr.model import blank_id, build_model, model_config_from
from omni.asr.parallel import RankFailedError, launch
from omni.asr.trainer import KL_COLUMN, LOG_COLUMNS, StepLoss, warmup_cosine
from omni.atomic import load_torch
from omni.data.augment import WaveAugment
from omni.data.batches import BatchStream, UtteranceSet, bucket_batches
from omni.data.features import LogMel, SpecAugment, load_feature_stats
from omni.data.manifest import read_manifest
from omni.data.tokenizer import Tokenizer
from omni.jobs.specs import DenseJob, supernet_job
from omni.jobs.training import run_training_job, train_settings
from omni.runtime import seed_everything
from tests.conftest import PreparedData, paths, training_setup
from tests.faults import FaultRecorder, differing

CPU = torch.device("cpu")
WORLD = 2
FAILURE_SECONDS = 60.0
"""A dead rank must fail the job promptly, not after the 30-minute collective timeout."""


def _utterances(prepared: PreparedData) -> UtteranceSet:
    return UtteranceSet(
        read_manifest(prepared.manifests["train"]),
        Tokenizer(prepared.tokenizer),
        prepared.config["data"]["sample_rate"],
        cache_audio=False,
    )


def test_ranks_split_the_single_process_batch_order(prepared: PreparedData) -> None:
    utterances = _utterances(prepared)
    budget = 400 * prepared.config["features"]["hop_length"]
    steps = len(bucket_batches(utterances.num_samples, budget, seed=3, epoch=0)) // WORLD + 2  # into epoch 1

    def stream(rank: int, world: int) -> BatchStream:
        return BatchStream(utterances, budget, seed=3, sortagrad=True, rank=rank, world=world)

    single = [batch.utt_ids for batch in itertools.islice(stream(0, 1), WORLD * steps)]
    ranks = [stream(rank, WORLD) for rank in range(WORLD)]
    per_rank = [[batch.utt_ids for batch in itertools.islice(s, steps)] for s in ranks]
    for step in range(steps):
        assert [per_rank[rank][step] for rank in range(WORLD)] == single[WORLD * step : WORLD * (step + 1)]
    assert ranks[0].state_dict() == ranks[1].state_dict()
    assert ranks[0].epoch >= 1


STEPS = 3


def _deterministic(prepared: PreparedData, processes: int) -> dict:
    """The smoke config without randomness the ranks draw apart (dropout), augmented from the first
    step with SpecAugment on (augmentation is drawn per batch, the same on whichever rank)."""
    config = json.loads(json.dumps(prepared.config))
    config["train"].update(cpu_processes=processes, checkpoint_every=STEPS, dense_clean_steps=0)
    config["features"]["spec_augment"].update(freq_masks=1, time_masks=1)
    config["model"]["presets"]["smoke"].update(dropout=0.0, lstm_dropout=0.0)
    return config


def test_two_processes_equal_one_process_on_their_global_batch(prepared: PreparedData, tmp_path: Path) -> None:
    """DDP over torchrun: each step's update is the one a single process makes from the mean of both
    ranks' batch losses (their gradients averaged) with the same augmentation, within float tolerance."""
    config = _deterministic(prepared, WORLD)
    setup = training_setup(config, "dense")
    job = paths(prepared, tmp_path / "ddp")
    run_training_job(setup, DenseJob("dense", STEPS), job, WORLD)
    parallel = load_torch(job.model_out)["state_dict"]
    assert json.loads(job.cost_out.read_text())["processes"] == WORLD

    # One process: the same model, both ranks' batches per step, the loop's clipping and schedule.
    training = setup.training
    seed_everything(setup.seed)
    tokenizer = Tokenizer(prepared.tokenizer)
    model_config = model_config_from(dict(setup.model), num_symbols=tokenizer.vocab_size + 1)
    model = build_model(model_config).train()
    frontend = Frontend(
        LogMel.from_section(setup.logmel),
        load_feature_stats(prepared.feature_stats),
        model_config["right_context_length"],
        SpecAugment(setup.augmentation["spec_augment"]),
    )
    utterances = UtteranceSet(
        read_manifest(prepared.manifests["train"]), tokenizer, setup.logmel["sample_rate"], cache_audio=False
    )
    budget = training.batch_frames * setup.logmel["hop_length"]
    augment = WaveAugment(setup.augmentation["wave_augment"], setup.logmel["sample_rate"])
    streams = [
        iter(
            BatchStream(
                utterances, budget, setup.seed, sortagrad=training.sortagrad, rank=rank, world=WORLD, augment=augment
            )
        )
        for rank in range(WORLD)
    ]
    settings = train_settings(training, STEPS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, fused=True)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(settings))
    for _ in range(STEPS):
        optimizer.zero_grad()
        for stream in streams:
            batch = next(stream)
            assert batch.augment_seed is not None
            StepLoss(model, frontend, batch, blank_id(model_config))().div(WORLD).backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()), settings.grad_clip)
        optimizer.step()
        scheduler.step()
    single = model.state_dict()
    assert parallel.keys() == single.keys()
    for name in single:
        # Float tolerance: summation order differs (gloo's all-reduce vs one backward). Adam divides by the
        # gradient's RMS, so a weight with a near-zero gradient (the key projection's bias: attention is
        # invariant to it) turns rounding noise into visible updates: measured 3e-5 there, < 1e-5 elsewhere.
        torch.testing.assert_close(parallel[name], single[name], rtol=1e-5, atol=1e-4, msg=name)
    assert max((parallel[name] - single[name]).abs().max() for name in single if "key_value.bias" not in name) < 1e-5


@pytest.mark.fault("kills")
def test_a_failing_rank_fails_the_job_promptly(fault: FaultRecorder) -> None:
    """Rank 1 raises while rank 0 waits in a collective: torchrun stops rank 0 at once."""
    started = time.monotonic()
    with pytest.raises(RankFailedError, match="failed with exit code"):
        launch(WORLD, "tests.failing_rank", [])
    failed_after = time.monotonic() - started
    assert failed_after < FAILURE_SECONDS
    fault.survived(
        f"rank 1 of 2 failed while rank 0 waited in a collective: the job failed in {failed_after:.0f} s "
        f"(limit {FAILURE_SECONDS:.0f} s), not after the 30-minute collective timeout"
    )


@pytest.mark.fault("kills")
def test_a_supernet_with_several_passes_per_step_trains_and_resumes_exactly_in_two_processes(
    prepared: PreparedData, dense_model: Path, tmp_path: Path, fault: FaultRecorder
) -> None:
    """Sandwich + in-place distillation + loss-weighted levels + private per-level norms and biases under
    DDP: the earlier passes of a step accumulate under no_sync, the levels drawn agree on both ranks (the
    loss weights are rank means), every level's copies count as used, and a killed and resumed job ends
    with the uninterrupted job's weights."""
    config = json.loads(json.dumps(prepared.config))
    config["train"].update(cpu_processes=WORLD, checkpoint_every=2)
    config["omni"].update(sampling="sandwich", random_levels=1, level_weights="loss", private_parameters="encoder")
    config["omni"].update(budget=4 * 3, unequal_budget=True)  # 4 steps of 3 passes
    config["distill"]["omni"] = "inplace"
    setup = training_setup(config, "omni")
    spec = supernet_job("omni", job_params.supernet(config), job_params.masks(config))
    assert spec.steps == 4
    straight = paths(prepared, tmp_path / "straight", init=dense_model)
    run_training_job(setup, spec, straight, WORLD)
    killed = paths(prepared, tmp_path / "killed", init=dense_model)
    run_training_job(setup, spec, killed, WORLD, halt_after=2)
    run_training_job(setup, spec, killed, WORLD)
    a, b = load_torch(straight.model_out)["state_dict"], load_torch(killed.model_out)["state_dict"]
    fault.data_lost(differing(a, b), "tensors unlike the undisturbed 2-process job's")
    assert all(torch.equal(a[name], b[name]) for name in a)
    log = pd.read_csv(straight.log_out)
    churn = [f"churn_{level:g}" for level in sorted(config["sparsity"]["levels"])]
    assert list(log.columns) == [
        *LOG_COLUMNS,
        KL_COLUMN,
        *(f"{kind}_pass{i}" for i in (1, 2, 3) for kind in ("level", "loss")),
        *churn,
    ]
    assert any(name.startswith("private/") for name in a), "the levels' own copies are in the artefact"
    assert (log["level_pass1"] <= log[["level_pass2", "level_pass3"]].min(axis=1)).all(), "the densest teaches first"
    assert json.loads(straight.cost_out.read_text())["subnet_passes"] == 4 * 3
    fault.survived(
        "a 2-process supernet job (sandwich, in-place distillation, private copies) halted after step "
        "2; the rerun ended with the undisturbed job's weights"
    )
