"""Supernet mechanics matched to the individual job: per-level ramps, settled rankings, distinct passes,
loss-weighted draws per frame, the pruning jobs' own lr warm-up, and omni arms of a subset of levels."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import torch

from omni import job_params
from omni.asr.checkpoints import read_checkpoint
from omni.asr.trainer import PlainLoss
from omni.atomic import load_torch
from omni.config import ConfigError
from omni.config_checks import check_study
from omni.jobs.specs import control_job, supernet_job, supernet_spec, training_spec
from omni.jobs.training import run_training_job, train_settings
from omni.sparsity.gradual import GradualPruning
from omni.sparsity.masks import LayerRanking, cubic_sparsity, masks_at, original_weight
from omni.sparsity.specs import PruningRamp
from omni.sparsity.supernet import LevelSampler, LevelWeights, SupernetGradients
from omni.study import Study
from tests.conftest import PreparedData, layered_config, paths, training_setup
from tests.faults import FaultRecorder
from tests.test_sparsity import fixed_batch, logits_of, mask_settings, small_setup

LEVELS = [0.5, 0.7, 0.8, 0.9]
STEPS = 800


def _matched_config(**omni: object) -> dict:
    return layered_config({"omni": {"level_ramps": "individual", **omni}})


def test_individual_ramps_give_every_level_its_individual_jobs_sparsity_at_every_step() -> None:
    config = _matched_config()
    spec = supernet_spec(job_params.supernet(config))
    steps, sampler = spec.steps, LevelSampler.for_steps(spec, spec.steps)
    assert steps == STEPS == config["individual"]["steps"], "uniform + dense teacher: as many steps as the job"
    model, _, small = small_setup()
    individual = config["individual"]
    for level in LEVELS:
        ramp = PruningRamp(individual["prune_fraction"], individual["mask_update_every"])
        job = GradualPruning(model, mask_settings(small), level, STEPS, ramp)
        assert all(sampler.sparsity_at(level, step) == job.scheduled_sparsity(step) for step in range(STEPS))
    generator = torch.Generator().manual_seed(0)
    every_level = dataclasses.replace(sampler, strategy="fixed_set")
    for step in (0, 100, 479, 480, 799):
        assert every_level.sample(step, generator) == sorted(
            {job_sparsity(level, step) for level in LEVELS}, reverse=True
        )
    assert sampler.ramp_end == 480, "every level at its target from where the individual ramp ends"


def job_sparsity(level: float, step: int) -> float:
    return cubic_sparsity(step, final=level, ramp_steps=480, update_every=10)


def test_shared_ramp_caps_every_level_by_the_highest_levels_one_ramp() -> None:
    config = layered_config({"omni": {"sampling": "fixed_set"}})
    spec = supernet_spec(job_params.supernet(config))
    sampler = LevelSampler.for_steps(spec, spec.steps)
    generator = torch.Generator().manual_seed(0)
    assert sampler.warmup_steps == round(0.4 * 237)
    for step in (0, 50, 90, 94, 95, 200):
        cap = cubic_sparsity(step, final=0.9, ramp_steps=sampler.warmup_steps, update_every=10)
        assert sampler.sample(step, generator) == sorted({min(level, cap) for level in LEVELS}, reverse=True)


def test_distinct_passes_train_a_sub_network_once_per_step() -> None:
    def sandwich(distinct: bool) -> LevelSampler:
        return LevelSampler(
            strategy="sandwich",
            levels=LEVELS,
            level_space="discrete",
            continuous_range=(0.5, 0.9),
            random_levels=1,
            warmup_steps=320,
            update_every=10,
            level_ramps="individual",
            ramp_steps=480,
            ramp_update_every=10,
            distinct=distinct,
        )

    generator = torch.Generator().manual_seed(0)
    assert sandwich(False).sample(0, generator) == [0.0, 0.0, 0.0], "at step 0 every level is still dense"
    assert sandwich(True).sample(0, generator) == [0.0]
    late = sandwich(True).sample(500, generator)
    assert late[:2] == [0.9, 0.5] and len(late) == len(set(late))


def test_individual_ramps_need_discrete_levels_and_a_freeze_needs_settled_rankings() -> None:
    with pytest.raises(ConfigError, match=r"omni\.level_ramps.*continuous"):
        check_study(_matched_config(level_space="continuous", level_weights=None))
    with pytest.raises(ConfigError, match=r"omni\.freeze_fraction.*settled"):
        check_study(layered_config({"omni": {"freeze_fraction": 0.5}}))
    with pytest.raises(ConfigError, match=r"omni\.levels.*\[0\.6\]"):
        check_study(layered_config({"omni": {"levels": [0.6, 0.9]}}))


def test_matched_mechanics_are_declared_only_when_on() -> None:
    default = layered_config({})
    plain = job_params.supernet(default)
    assert not {"level_ramps", "individual_ramp", "settled_rankings", "distinct_passes", "level_loss"} & set(plain)
    matched = job_params.supernet(_matched_config(rankings="settled"))
    assert matched["individual_ramp"] == {"mask_update_every": 10, "prune_fraction": 0.6}
    assert matched["settled_rankings"] == {"freeze_fraction": 0.6}, "null: where the individual ramp ends"
    assert "warmup_fraction" not in job_params.training(default, "omni", 1)


# ---------------------------------------------------------------- settled rankings


def _settled(model: torch.nn.Module, config: dict, freeze_at: int) -> SupernetGradients:
    sampler = LevelSampler(
        strategy="fixed_set",
        levels=LEVELS,
        level_space="discrete",
        continuous_range=(0.5, 0.9),
        random_levels=0,
        warmup_steps=0,
        update_every=2,
        level_ramps="individual",
        ramp_steps=8,
        ramp_update_every=2,
    )
    return SupernetGradients(model, mask_settings(config), sampler, 2, 0, settled_from=freeze_at)


def test_settled_rankings_never_revive_a_pruned_unit_and_stay_fixed_after_the_freeze() -> None:
    model, _, config = small_setup()
    strategy = _settled(model, config, freeze_at=10)
    generator = torch.Generator().manual_seed(1)
    previous: dict[float, dict[str, torch.Tensor]] = {}
    frozen: dict[str, LayerRanking] = {}
    for step in range(16):
        strategy.prepare(step)
        for level in LEVELS:
            masks = masks_at(strategy.rankings, strategy.sampler.sparsity_at(level, step))
            for name, mask in masks.items():
                if level in previous:
                    assert not (mask & ~previous[level][name]).any(), f"{name} at {level} revived a unit, step {step}"
            previous[level] = masks
        nested = [masks_at(strategy.rankings, level) for level in LEVELS]
        assert all(
            not (sparser[name] & ~denser[name]).any() for denser, sparser in zip(nested, nested[1:]) for name in sparser
        ), "one order: nested levels"
        if step == 10:
            frozen = {name: LayerRanking.from_state_dict(r.state_dict()) for name, r in strategy.rankings.items()}
        if step >= 10:
            assert all(torch.equal(strategy.rankings[name]._rank, frozen[name]._rank) for name in frozen)
        with torch.no_grad():  # the weights move as training would move them
            for name in strategy.names:
                weight = original_weight(model, name)
                weight.add_(0.5 * weight.std() * torch.randn(weight.shape, generator=generator))


def test_moving_rankings_do_revive_units() -> None:
    """The control of the test above: without settled rankings the same weight noise revives units."""
    model, _, config = small_setup()
    strategy = _settled(model, config, freeze_at=10)
    strategy.settled_from = None
    generator = torch.Generator().manual_seed(1)
    strategy.prepare(8)
    before = masks_at(strategy.rankings, 0.9)
    with torch.no_grad():
        for name in strategy.names:
            weight = original_weight(model, name)
            weight.add_(0.5 * weight.std() * torch.randn(weight.shape, generator=generator))
    strategy.prepare(10)
    after = masks_at(strategy.rankings, 0.9)
    assert any((after[name] & ~before[name]).any() for name in after)


@pytest.mark.fault("kills")
def test_settled_supernet_job_checkpoints_one_ranking_from_its_freeze_to_its_model(
    prepared: PreparedData, dense_model: Path, tmp_path: Path, fault: FaultRecorder
) -> None:
    config = copy.deepcopy(prepared.config)
    config["omni"].update(level_ramps="individual", rankings="settled", freeze_fraction=0.5)
    config["train"]["checkpoint_every"] = 1
    spec = supernet_job("omni", job_params.supernet(config), job_params.masks(config))
    freeze = round(0.5 * spec.steps)
    job = paths(prepared, tmp_path, init=dense_model)
    setup = training_setup(config, "omni")
    run_training_job(setup, spec, job, 1, halt_after=freeze + 1)
    at_freeze = {
        step: read_checkpoint(job.checkpoint_dir / f"step{step:08d}.pt")["strategy"]["rankings"]
        for step in (freeze, freeze + 1)
    }
    run_training_job(setup, spec, job, 1)  # resumes to the end
    final = load_torch(job.model_out)["rankings"]
    fault.data_lost(
        [
            name
            for name in at_freeze[freeze]
            if name not in final or not torch.equal(final[name]["rank"], at_freeze[freeze][name]["rank"])
        ],
        "layers whose final ranking is not the one frozen",
    )
    for name, ranking in final.items():
        assert torch.equal(at_freeze[freeze + 1][name]["rank"], at_freeze[freeze][name]["rank"]), name
        assert torch.equal(ranking["rank"], at_freeze[freeze][name]["rank"]), (
            f"{name}: extracted = trained since freeze"
        )
    fault.survived(
        "a settled-rankings supernet job halted one step after its freeze; the resumed job kept the "
        "frozen ranking to its model"
    )


# ---------------------------------------------------------------- loss per frame, lr warm-up


class _FrameLoss(PlainLoss):
    def __init__(self, compute: object, per_frame: float) -> None:
        super().__init__(compute)
        self.last_frame_loss = per_frame


@pytest.mark.parametrize("level_loss, expected", [("utterance", None), ("frame", 0.25)])
def test_loss_weighted_draws_average_the_configured_loss(level_loss: str, expected: float | None) -> None:
    model, model_config, config = small_setup()
    batch = fixed_batch(model_config)
    sampler = LevelSampler(
        strategy="uniform",
        levels=[0.5],
        level_space="discrete",
        continuous_range=(0.5, 0.9),
        random_levels=0,
        warmup_steps=0,
        update_every=1,
    )
    strategy = SupernetGradients(
        model, mask_settings(config), sampler, 1, 0, level_weights=LevelWeights("loss", [0.5]), level_loss=level_loss
    )
    strategy.prepare(0)
    loss = strategy.accumulate(0, _FrameLoss(lambda: logits_of(model, batch).square().mean(), 0.25)).loss
    observed = strategy.level_weights.average_loss[0.5]
    assert observed == pytest.approx(loss if expected is None else expected)


def test_a_pruning_job_warms_up_over_its_own_fraction_of_steps() -> None:
    config = layered_config({"train": {"finetune_warmup_fraction": 0.1}})
    for arm in ("control", "individual", "omni"):
        assert train_settings(training_spec(job_params.training(config, arm, 1)), steps=448).warmup_steps == 45
    assert (
        train_settings(training_spec(job_params.training(config, "dense", config["seed"])), steps=3400).warmup_steps
        == 250
    )
    default = layered_config({})
    assert train_settings(training_spec(job_params.training(default, "omni", 1)), steps=448).warmup_steps == 250


# ---------------------------------------------------------------- omni arms of a subset of levels


def test_an_omni_arm_of_one_level_trains_and_is_cut_at_that_level_only() -> None:
    config = layered_config({"variants": {"omni-k1": {"omni": {"levels": [0.9]}}}, "search": {"arms": []}})
    check_study(config)
    assert job_params.supernet(config, "omni-k1")["levels"] == [0.9]
    steps = supernet_spec(job_params.supernet(config, "omni-k1")).steps
    assert steps == STEPS, "equal compute: one level or four, one individual job's passes"
    study = Study.from_config(config)
    tags = {tag for arm, _, tag in study.evaluated_models() if arm == "omni-k1"}
    assert tags == {"s0.9"} and study.levels_of("omni") == ("0.5", "0.7", "0.8", "0.9")


# ---------------------------------------------------------------- the control's teacher


def test_the_control_distils_from_the_teacher_of_the_arms_it_controls(
    prepared: PreparedData, dense_model: Path, tmp_path: Path
) -> None:
    config = copy.deepcopy(prepared.config)
    config["distill"].update(individual="dense", omni="dense", control="dense")
    section = job_params.control(config)
    assert section["distill"] == {"form": "full", "teacher": "dense", "weight": config["distill"]["weight"]}
    config["distill"]["control"] = "none"
    assert "distill" not in job_params.control(config), "labels only: the section (and its outputs) as before"
    config["distill"]["control"] = "dense"
    job = paths(prepared, tmp_path, init=dense_model)
    setup = training_setup(config, "control")
    run_training_job(setup, control_job(section), job, 1)
    assert (pd.read_csv(job.log_out)["kl"] > 0).all(), "every step learns the dense model's outputs"
    with pytest.raises(ConfigError, match=r"variants\.omni-x\.distill\.control"):
        check_study(layered_config({"variants": {"omni-x": {"distill": {"control": "none"}}}}))


def test_a_reranking_logs_each_levels_churn_and_a_frozen_ranking_none() -> None:
    model, model_config, config = small_setup()
    batch = fixed_batch(model_config)
    strategy = _settled(model, config, freeze_at=4)
    strategy.prepare(0)
    assert strategy.churn == {}, "the first ranking replaces none"
    with torch.no_grad():
        for name in strategy.names:
            original_weight(model, name).mul_(torch.rand(original_weight(model, name).shape))
    strategy.prepare(2)
    extra = strategy.accumulate(2, PlainLoss(lambda: logits_of(model, batch).square().mean())).fields
    assert set(extra) >= {"churn_0.5", "churn_0.9"} and 0 < extra["churn_0.9"] <= 1
    strategy.prepare(4)
    assert strategy.churn == {}, "frozen from step 4: nothing moves"


# ---------------------------------------------------------------- private per-level parameters


def test_private_parameters_are_the_encoders_norms_and_prunable_biases_and_optionally_the_joiner() -> None:
    from omni.sparsity.masks import prunable_parameter_names
    from omni.sparsity.private import private_names

    model, _, config = small_setup()
    prunable = prunable_parameter_names(model, mask_settings(config))
    names = private_names(model, prunable, "encoder")
    assert "transcriber.transformer.emformer_layers.0.layer_norm_input.weight" in names
    assert "transcriber.transformer.emformer_layers.0.attention.out_proj.bias" in names
    assert all(name.startswith("transcriber.") and name not in prunable for name in names)
    assert not any(name.startswith("predictor.") for name in names), "the predictor is not pruned: shared"
    with_joiner = private_names(model, prunable, "encoder_and_joiner")
    assert set(with_joiner) - set(names) == {"joiner.linear.weight", "joiner.linear.bias"}
    assert private_names(model, prunable, "none") == []


def test_a_step_trains_its_levels_private_copies_and_leaves_the_others_as_they_were() -> None:
    model, model_config, config = small_setup()
    batch = fixed_batch(model_config)
    sampler = LevelSampler(
        strategy="uniform",
        levels=[0.5, 0.9],
        level_space="discrete",
        continuous_range=(0.5, 0.9),
        random_levels=0,
        warmup_steps=0,
        update_every=1,
    )
    strategy = SupernetGradients(model, mask_settings(config), sampler, 1, 0, private="encoder")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.01, weight_decay=0.5)
    name = "transcriber.transformer.emformer_layers.0.layer_norm_input.bias"
    for step in range(4):
        strategy.prepare(step)
        trained = strategy.step_targets[0]
        before = strategy.private.per_level()
        optimizer.zero_grad()
        strategy.accumulate(step, PlainLoss(lambda: logits_of(model, batch).square().mean()))
        optimizer.step()
        strategy.after_step()
        after = strategy.private.per_level()
        for level in (0.5, 0.9):
            key = f"private/{level:g}/{name}"
            assert torch.equal(after[key], before[key]) == (level != trained), (step, level)
    state, _ = strategy.final_model()
    assert not any(".copies." in key for key in state) and f"private/0.5/{name}" in state


def test_a_private_supernet_job_cuts_each_level_with_its_own_copies(
    prepared: PreparedData, dense_model: Path, tmp_path: Path
) -> None:
    from omni.asr.model import build_model
    from omni.sparsity.extract import extract_subnetwork

    config = copy.deepcopy(prepared.config)
    config["omni"]["private_parameters"] = "encoder"
    supernet = job_params.supernet(config)
    assert supernet["private_parameters"] == "encoder"
    spec = supernet_job("omni", supernet, job_params.masks(config))
    job = paths(prepared, tmp_path, init=dense_model)
    setup = training_setup(config, "omni")
    run_training_job(setup, spec, job, 1, halt_after=spec.steps // 2)
    run_training_job(setup, spec, job, 1)  # resumes the copies from the checkpoint
    artefact = load_torch(job.model_out)
    name = "transcriber.transformer.emformer_layers.0.layer_norm_input.weight"
    cut = {level: extract_subnetwork(artefact, level)[0] for level in config["sparsity"]["levels"]}
    for level, state in cut.items():
        assert torch.equal(state[name], artefact["state_dict"][f"private/{level:g}/{name}"])
        build_model(artefact["model_config"]).load_state_dict(state)  # a plain model of that level
    low, high = sorted(cut)
    assert not torch.equal(cut[low][name], cut[high][name]), "each level trained its own copy"
    with pytest.raises(ValueError, match="private per-level parameters"):
        extract_subnetwork(artefact, {key: 0.6 for key in artefact["rankings"]})
    with pytest.raises(ConfigError, match=r"search\.arms.*private"):
        check_study(layered_config({"omni": {"private_parameters": "encoder"}}))
