"""The two pruning arms: the individual job reaches its exact sparsity; the supernet samples the
levels it promises, its sub-networks are nested, and extraction trains nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from omni import job_params
from omni.asr.checkpoints import read_checkpoint
from omni.asr.model import build_model
from omni.asr.trainer import PlainLoss
from omni.atomic import load_torch
from omni.jobs.specs import individual_job, supernet_job
from omni.jobs.training import run_training_job
from omni.sparsity.budget import supernet_steps
from omni.sparsity.extract import extract_subnetwork
from omni.sparsity.masks import LayerRanking, masks_at, rank_layers, units_to_prune
from omni.sparsity.supernet import LevelSampler, SupernetGradients
from tests.conftest import PreparedData, paths, training_setup
from tests.faults import FaultRecorder, differing
from tests.test_sparsity import mask_settings, small_setup

TARGET = 0.8
STEPS = 6


def test_individual_job_reaches_exact_target_sparsity(
    prepared: PreparedData, dense_model: Path, tmp_path: Path
) -> None:
    config = prepared.config
    individual = {**job_params.individual(config), "steps": STEPS}
    spec = individual_job("individual", TARGET, individual, job_params.masks(config))
    job = paths(prepared, tmp_path, init=dense_model)
    setup = training_setup(config, "individual")
    run_training_job(setup, spec, job, 1)  # the strategy from the job's spec, as the job builds it
    artefact = load_torch(job.model_out)
    assert artefact["masks"], "a pruned model stores its masks"
    for name, mask in artefact["masks"].items():
        pruned = mask.numel() - int(mask.sum())
        assert pruned == units_to_prune(TARGET, mask.numel()), name
        weight = artefact["state_dict"][name]
        assert torch.count_nonzero(weight[~mask]) == 0, f"{name}: pruned weights must be zero"
    logged = list(pd.read_csv(job.log_out)["sparsity"])
    assert logged == sorted(logged) and logged[-1] == TARGET, "cubic schedule only grows, ends at the target"


def sampler(strategy: str, random_levels: int = 1, warmup: int = 0) -> LevelSampler:
    return LevelSampler(
        strategy=strategy,
        levels=[0.5, 0.7, 0.8, 0.9],
        level_space="discrete",
        continuous_range=(0.5, 0.9),
        random_levels=random_levels,
        warmup_steps=warmup,
        update_every=1,
    )


def test_sampling_strategies_give_the_levels_they_promise() -> None:
    generator = torch.Generator().manual_seed(0)
    for step in range(20):
        sandwich = sampler("sandwich", random_levels=2).sample(step, generator)
        assert sandwich[:2] == [0.9, 0.5] and len(sandwich) == 4 and set(sandwich[2:]) <= {0.5, 0.7, 0.8, 0.9}
        assert sampler("fixed_set").sample(step, generator) == [0.9, 0.8, 0.7, 0.5]
        uniform = sampler("uniform").sample(step, generator)
        assert len(uniform) == 1 and uniform[0] in {0.5, 0.7, 0.8, 0.9}
    seen = {sampler("uniform").sample(0, generator)[0] for _ in range(200)}
    assert seen == {0.5, 0.7, 0.8, 0.9}
    again = torch.Generator().manual_seed(0)
    first = [sampler("sandwich", 2).sample(s, torch.Generator().manual_seed(0)) for s in range(3)]
    assert first == [sampler("sandwich", 2).sample(s, again.manual_seed(0)) for s in range(3)]


def test_highest_level_grows_on_the_cubic_schedule_during_warmup() -> None:
    warm = sampler("sandwich", random_levels=0, warmup=10)
    generator = torch.Generator().manual_seed(0)
    highest = [warm.sample(step, generator)[0] for step in range(12)]
    assert highest[0] == 0.0 and highest[-1] == 0.9
    assert highest == sorted(highest)
    assert all(level <= top for step, top in enumerate(highest) for level in warm.sample(step, generator))


@pytest.mark.parametrize(("strategy", "passes"), [("uniform", 1), ("sandwich", 4), ("fixed_set", 4)])
def test_supernet_log_names_a_level_and_loss_column_per_pass(strategy: str, passes: int) -> None:
    model, _, config = small_setup()
    gradients = SupernetGradients(model, mask_settings(config), sampler(strategy, random_levels=2), 2, 0)
    levels = [f"churn_{level:g}" for level in gradients.sampler.levels]
    assert (
        gradients.log_columns()
        == [f"{kind}_pass{i}" for i in range(1, passes + 1) for kind in ("level", "loss")] + levels
    )
    gradients.prepare(0)
    result = gradients.accumulate(0, PlainLoss(lambda: sum(p.sum() for p in model.parameters()) * 0.0 + 1.0))
    trained = [result.fields[f"level_pass{i}"] for i in range(1, passes + 1)]
    assert result.passes == passes and result.loss == 1.0
    assert [result.fields[f"loss_pass{i}"] for i in range(1, passes + 1)] == [1.0] * passes
    promised = {
        "uniform": lambda: len(trained) == 1 and trained[0] in {0.5, 0.7, 0.8, 0.9},
        "sandwich": lambda: trained[:2] == [0.9, 0.5] and set(trained[2:]) <= {0.5, 0.7, 0.8, 0.9},
        "fixed_set": lambda: trained == [0.9, 0.8, 0.7, 0.5],
    }
    assert promised[strategy](), f"{strategy} trained {trained}"


def test_budget_rule_trades_steps_for_sampled_subnetworks() -> None:
    assert supernet_steps(300, sampler("sandwich", random_levels=0).passes_per_step()) == 150
    assert supernet_steps(300, sampler("uniform").passes_per_step()) == 300
    assert supernet_steps(300, sampler("fixed_set").passes_per_step()) == 75


def test_supernet_masks_nested_and_extraction_is_fine_tune_free(
    prepared: PreparedData, dense_model: Path, tmp_path: Path
) -> None:
    config = json.loads(json.dumps(prepared.config))
    levels = [0.5, 0.7, 0.9]
    config["sparsity"]["levels"] = levels
    config["omni"]["mask_update_every"] = 2
    spec = supernet_job("omni", job_params.supernet(config), job_params.masks(config))
    steps, level_sampler = spec.steps, LevelSampler.for_steps(spec.supernet, spec.steps)
    job = paths(prepared, tmp_path, init=dense_model)
    run_training_job(training_setup(config, "omni"), spec, job, 1)
    supernet = load_torch(job.model_out)
    assert json.loads(job.cost_out.read_text())["subnet_passes"] == steps * level_sampler.passes_per_step()
    log = pd.read_csv(job.log_out)
    churn = [f"churn_{level:g}" for level in sorted(levels)]
    assert list(log.columns[-2 - len(levels) :]) == ["level_pass1", "loss_pass1", *churn], "uniform: one pass per step"
    assert log[churn].notna().any().all(), "re-ranking steps log each level's churn"
    assert log["level_pass1"].between(0.0, max(levels)).all() and log["loss_pass1"].gt(0).all()

    extracted = {level: extract_subnetwork(supernet, level) for level in levels}
    for low, high in zip(levels, levels[1:]):
        for name, mask in extracted[high][1].items():
            assert not (mask & ~extracted[low][1][name]).any(), f"{name}: {high} not nested in {low}"
    state, masks = extracted[0.7]
    for name, tensor in supernet["state_dict"].items():
        if name in masks:
            assert torch.equal(state[name][masks[name]], tensor[masks[name]]), name
            assert torch.count_nonzero(state[name][~masks[name]]) == 0
        else:
            assert torch.equal(state[name], tensor), name


@pytest.mark.fault("kills")
def test_supernet_resume_is_exact_between_mask_updates(
    prepared: PreparedData, dense_model: Path, tmp_path: Path, fault: FaultRecorder
) -> None:
    """Killed at a step that is not a mask-update step: the resumed job must reuse the rankings it
    had (saved in the checkpoint), not re-rank from the restored weights."""
    config = json.loads(json.dumps(prepared.config))
    config["train"]["checkpoint_every"] = 3
    config["omni"]["mask_update_every"] = 2
    spec = supernet_job("omni", job_params.supernet(config), job_params.masks(config))
    steps = spec.steps
    assert steps > 3 and steps % 2 == 0, "halted at step 3, between the updates at steps 2 and 4"
    setup = training_setup(config, "omni")
    straight = paths(prepared, tmp_path / "straight", init=dense_model)
    run_training_job(setup, spec, straight, 1)
    killed = paths(prepared, tmp_path / "killed", init=dense_model)
    run_training_job(setup, spec, killed, 1, halt_after=3)
    run_training_job(setup, spec, killed, 1)
    a, b = load_torch(straight.model_out)["state_dict"], load_torch(killed.model_out)["state_dict"]
    fault.data_lost(differing(a, b), "tensors unlike the undisturbed supernet job's")
    assert all(torch.equal(a[name], b[name]) for name in a)
    fault.survived(
        "a supernet job halted at step 3, between mask updates; the rerun reused the checkpointed "
        "rankings and ended with the undisturbed job's weights"
    )


def test_extraction_cuts_the_subnetworks_the_supernet_last_trained(
    prepared: PreparedData, dense_model: Path, tmp_path: Path
) -> None:
    """Masks re-rank only every mask_update_every steps; the weights move after the last re-ranking.
    Extraction must cut what the last step trained, i.e. the rankings in the final checkpoint."""
    config = json.loads(json.dumps(prepared.config))
    config["omni"].update(mask_update_every=4, warmup_fraction=0.0)  # re-ranked at steps 0 and 4 of 6
    spec = supernet_job("omni", job_params.supernet(config), job_params.masks(config))
    assert spec.steps > 4
    job = paths(prepared, tmp_path, init=dense_model)
    run_training_job(training_setup(config, "omni"), spec, job, 1)
    supernet = load_torch(job.model_out)
    last_checkpoint = max(job.checkpoint_dir.glob("step*.pt"))
    trained = {
        name: LayerRanking.from_state_dict(state)
        for name, state in read_checkpoint(last_checkpoint)["strategy"]["rankings"].items()
    }
    model = build_model(supernet["model_config"])
    model.load_state_dict(supernet["state_dict"])
    reranked = rank_layers(model, list(trained), spec.masks.granularity, spec.masks.block_shape)
    moved = 0
    for level in config["sparsity"]["levels"]:
        _, extracted = extract_subnetwork(supernet, level)
        expected = masks_at(trained, level)
        assert all(torch.equal(extracted[name], expected[name]) for name in expected), level
        moved += sum(int((masks_at(reranked, level)[name] != expected[name]).sum()) for name in expected)
    assert moved > 0, "the final weights rank differently: the test would not tell the two apart"
