"""Training: resume after a kill is exact, non-finite losses are handled, costs are recorded."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from omni import job_params
from omni.asr.checkpoints import HEADER, read_checkpoint
from omni.asr.evaluate import evaluate_model
from omni.asr.frontend import Frontend
from omni.asr.model import build_model, load_model
from omni.asr.trainer import GradientStrategy, NonFiniteLossError, StepResult
from omni.atomic import load_torch
from omni.data.batches import UtteranceSet
from omni.data.features import LogMel, load_feature_stats
from omni.data.manifest import read_manifest, write_manifest
from omni.data.tokenizer import Tokenizer
from omni.jobs import training
from omni.jobs.specs import DenseJob
from omni.jobs.training import StrategyFactory, run_training_job
from tests.conftest import PreparedData, paths, training_setup
from tests.faults import FaultRecorder, differing

STEPS = 4


def dense_spec() -> DenseJob:
    return DenseJob("dense", STEPS)


def config_for(prepared: PreparedData) -> dict:
    config = json.loads(json.dumps(prepared.config))
    config["train"]["checkpoint_every"] = 2
    return config


@pytest.mark.fault("kills")
@pytest.mark.parametrize(("processes", "loader_workers"), [(1, 0), (2, 0), (1, 2)])
def test_killed_and_resumed_run_ends_with_identical_weights(
    prepared: PreparedData, tmp_path: Path, processes: int, loader_workers: int, fault: FaultRecorder
) -> None:
    config = config_for(prepared)
    config["train"].update(cpu_processes=processes, loader_workers=loader_workers)
    run_training_job(training_setup(config, "dense"), dense_spec(), paths(prepared, tmp_path / "straight"), 1)
    killed = paths(prepared, tmp_path / "killed")
    run_training_job(training_setup(config, "dense"), dense_spec(), killed, 1, halt_after=2)
    assert not killed.model_out.exists(), "a halted job must not leave a finished-looking output"
    run_training_job(training_setup(config, "dense"), dense_spec(), killed, 1)
    straight = load_torch(tmp_path / "straight" / "model.pt")["state_dict"]
    resumed = load_torch(killed.model_out)["state_dict"]
    log_steps = [int(line.split(",")[0]) for line in killed.log_out.read_text().splitlines()[1:]]
    fault.data_lost(
        differing(straight, resumed) + sorted(set(range(1, STEPS + 1)) - set(log_steps)),
        "tensors unlike the undisturbed job's or steps missing from the log",
    )
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name
    assert log_steps == list(range(1, STEPS + 1))
    cost = json.loads(killed.cost_out.read_text())
    assert cost["steps"] == STEPS and cost["wall_s"] > 0 and cost["audio_hours"] > 0
    assert cost["processes"] == processes and cost["peak_mem_mb"] > 0
    assert cost["device_kind"] == "cpu" and cost["device_hours_unit"] == "CPU core-hours"
    fault.survived(
        f"halted after the checkpoint of step 2 ({processes} process(es), {loader_workers} loader "
        "workers); the rerun ended with the undisturbed job's weights, every log step and the cost record"
    )


def test_clean_steps_train_on_unaugmented_audio(prepared: PreparedData, tmp_path: Path) -> None:
    def final_weights(config: dict, clean_steps: int, name: str) -> dict[str, torch.Tensor]:
        job = paths(prepared, tmp_path / name)
        config["train"]["dense_clean_steps"] = clean_steps
        run_training_job(training_setup(config, "dense"), dense_spec(), job, 1)
        return load_torch(job.model_out)["state_dict"]

    unaugmented = config_for(prepared)
    unaugmented["features"]["wave_augment"].update(noise_prob=0.0, speed_factors=[1.0])
    noisy = config_for(prepared)
    noisy["features"]["wave_augment"].update(noise_prob=1.0, speed_factors=[0.9, 1.1])
    plain = final_weights(unaugmented, 0, "plain")
    clean_throughout = final_weights(noisy, STEPS, "clean")
    augmented_later = final_weights(noisy, STEPS // 2, "augmented")
    assert all(torch.equal(plain[name], clean_throughout[name]) for name in plain)
    assert not all(torch.equal(plain[name], augmented_later[name]) for name in plain)


def test_checkpoints_are_checksummed_plain_state_dicts(prepared: PreparedData, tmp_path: Path) -> None:
    config = config_for(prepared)
    job = paths(prepared, tmp_path)
    run_training_job(training_setup(config, "dense"), dense_spec(), job, 1, halt_after=2)
    checkpoint = next(job.checkpoint_dir.glob("step*.pt"))
    assert checkpoint.read_bytes().startswith(HEADER)
    state = read_checkpoint(checkpoint)  # verified, then loaded with weights_only=True
    assert state["step"] == 2 and "optimizer" in state and "rng" in state and "data" in state
    assert [row[0] for row in state["log"]] == ["1", "2"]


class FlakyGradients(GradientStrategy):
    """Non-finite loss at the listed steps (a stand-in for a corrupt batch or an overflow)."""

    def __init__(self, model: torch.nn.Module, bad_calls: set[int]) -> None:
        super().__init__(model)
        self.calls = 0
        self.bad_calls = bad_calls

    def accumulate(self, step, loss_fn):
        self.calls += 1
        if self.calls in self.bad_calls:
            return StepResult(math.nan)
        return super().accumulate(step, loss_fn)


def train_with(monkeypatch: pytest.MonkeyPatch, make_strategy: StrategyFactory) -> None:
    """The job's gradient strategy swapped for `make_strategy` (a job of one process: it builds it here)."""
    monkeypatch.setattr(training, "strategy_for", lambda job, seed: make_strategy)


def test_nonfinite_batch_is_skipped_and_counted(
    prepared: PreparedData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_for(prepared)
    job = paths(prepared, tmp_path)
    train_with(monkeypatch, lambda m: FlakyGradients(m, {2}))
    run_training_job(training_setup(config, "dense"), dense_spec(), job, 1)
    cost = json.loads(job.cost_out.read_text())
    assert cost["steps"] == STEPS
    assert cost["extra"]["nonfinite_skipped"] == 1


def test_too_many_nonfinite_losses_stop_without_checkpointing_past_the_last_good_step(
    prepared: PreparedData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_for(prepared)
    config["train"]["max_consecutive_nonfinite"] = 3
    job = paths(prepared, tmp_path)
    train_with(monkeypatch, lambda m: FlakyGradients(m, {3, 4, 5}))
    with pytest.raises(NonFiniteLossError, match="max_consecutive_nonfinite.*no step past 2 was checkpointed"):
        run_training_job(training_setup(config, "dense"), dense_spec(), job, 1)
    assert [p.name for p in job.checkpoint_dir.glob("step*.pt")] == ["step00000002.pt"]
    assert not job.model_out.exists()


def test_two_processes_train_on_twice_the_audio_per_step(prepared: PreparedData, tmp_path: Path) -> None:
    def run(processes: int) -> tuple[dict, dict[str, torch.Tensor]]:
        config = config_for(prepared)
        config["train"]["cpu_processes"] = processes
        job = paths(prepared, tmp_path / str(processes))
        run_training_job(training_setup(config, "dense"), dense_spec(), job, 2)
        return json.loads(job.cost_out.read_text()), load_torch(job.model_out)["state_dict"]

    (one_cost, one_weights), (two_cost, two_weights) = run(1), run(2)
    assert two_cost["steps"] == one_cost["steps"] == STEPS
    assert two_cost["audio_hours"] > 1.5 * one_cost["audio_hours"]
    assert two_cost["threads"] == 2 and two_cost["processes"] == 2
    assert not all(torch.equal(one_weights[name], two_weights[name]) for name in one_weights)


@pytest.mark.fault("bad configs")
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("setting", ["cuda", "cuda:1"])
def test_cuda_asked_for_on_a_machine_without_it_is_named(
    prepared: PreparedData, tmp_path: Path, setting: str, fault: FaultRecorder
) -> None:
    """A GPU job placed on a node without CUDA fails naming the key, instead of training on the CPU."""
    config = config_for(prepared)
    config["device"] = setting
    with pytest.raises(RuntimeError, match=r"config key 'device'.*CUDA is not available") as caught:
        run_training_job(training_setup(config, "dense"), dense_spec(), paths(prepared, tmp_path), 1)
    fault.named(str(caught.value), "config key 'device'")
    fault.survived("the job stopped before training instead of training on the CPU")


LEARN_UTTERANCES = 4
LEARN_STEPS = 150


def _beam_wer(model: torch.nn.Module, model_config: dict, prepared: PreparedData, manifest: Path) -> float:
    """WER of a width-4 beam search: it reads the model's whole distribution, where greedy search still
    loses words while a young transducer spreads each label over several frames."""
    logmel = job_params.logmel(prepared.config)
    frontend = Frontend(
        LogMel.from_section(logmel), load_feature_stats(prepared.feature_stats), model_config["right_context_length"]
    )
    utterances = UtteranceSet(read_manifest(manifest), None, logmel["sample_rate"], cache_audio=True)
    results = evaluate_model(
        model,
        model_config,
        frontend,
        utterances,
        Tokenizer(prepared.tokenizer),
        ["beam-full"],
        4,
        LEARN_UTTERANCES,
        torch.device("cpu"),
        "learns",
    )
    return results["beam-full"][1]["wer"]


def test_a_tiny_model_learns_a_tiny_corpus(prepared: PreparedData, tmp_path: Path) -> None:
    """The whole loop (features, RNN-T loss, AdamW, schedule) does its job: on 4 utterances, a smoke-sized
    model's loss falls to a small fraction of its start, and its WER on them from (nearly) every word wrong
    to (nearly) none."""
    manifest = tmp_path / "four.tsv"
    write_manifest(manifest, read_manifest(prepared.manifests["train"]).head(LEARN_UTTERANCES), None)
    config = json.loads(json.dumps(prepared.config))
    config["train"].update(lr=3e-3, warmup_steps=10, dense_clean_steps=LEARN_STEPS, checkpoint_every=LEARN_STEPS)
    config["model"]["presets"]["smoke"].update(dropout=0.0, lstm_dropout=0.0)
    job = replace(paths(prepared, tmp_path / "dense"), manifest=manifest)
    run_training_job(training_setup(config, "dense"), DenseJob("dense", LEARN_STEPS), job, 1)
    loss = pd.read_csv(job.log_out)["loss"]
    assert loss.iloc[-5:].mean() < 0.05 * loss.iloc[:5].mean(), f"loss {list(loss.iloc[:5])} -> {list(loss.iloc[-5:])}"
    trained, artefact = load_model(job.model_out, torch.device("cpu"))
    untrained = build_model(artefact["model_config"]).eval()
    before = _beam_wer(untrained, artefact["model_config"], prepared, manifest)
    after = _beam_wer(trained, artefact["model_config"], prepared, manifest)
    assert before >= 0.9 and after <= 0.1, f"WER {before:.3f} untrained -> {after:.3f} after {LEARN_STEPS} steps"
