"""Checks across configuration keys that the schema (omni.config) cannot express, run once when the workflow
is parsed (the Snakefile), so a bad configuration stops before any job starts with one error naming the key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omni.arms import PRUNING_KINDS, arm_kind
from omni.config import REPOSITORY, ConfigError, model_preset
from omni.job_params import (
    arm_config,
    arm_training,
    budget_levels,
    budget_multiples,
    equal_compute_budget,
    omni_levels,
    pruning_arms,
    replicate_arm,
    supernet,
    supernet_budget,
    training,
)
from omni.jobs.specs import supernet_spec, training_spec
from omni.study import RESULTS_FOLDER


def check_study(config: Mapping[str, Any]) -> None:
    """Every check across keys that the schema cannot express, run once when the workflow is
    parsed, so a bad configuration stops before any job starts. Raises ConfigError naming the key."""
    _check_finite(config)
    _check_results_dir(config["results_dir"])
    if config["corpus"] == "synth" and config["data"]["alphabet"] is None:
        raise ConfigError(
            "config key 'data.alphabet': the synthetic corpus draws its sentences within the alphabet;"
            " null (any letter) is for a corpus of your own"
        )
    _check_training(config)
    model_preset(config)
    table_decode, decodes = config["report"]["table_decode"], config["evaluate"]["decodes"]
    if table_decode not in decodes:
        raise ConfigError(
            f"config key 'report.table_decode': {table_decode!r} is not among evaluate.decodes "
            f"{decodes}, so no model is scored with it"
        )
    key = "sparsity.levels" if config["search"]["budgets"] is None else "search.budgets"
    unsearchable = [level for level in budget_levels(config) if level not in config["search"]["levels"]]
    if unsearchable:
        raise ConfigError(
            f"config key '{key}': budget levels {unsearchable} are not in search.levels "
            f"{config['search']['levels']} (the uniform model at a budget seeds its search)"
        )
    for arm in pruning_arms(config, "individual"):
        _check_individual_schedule(arm_config(config, arm), arm)
    _check_arms(config)
    for arm in pruning_arms(config, "omni"):
        _check_supernet(arm_config(config, arm), arm)


def _check_finite(value: Any, key: str = "") -> None:
    """No key means anything by NaN or infinity. JSON has neither, so the schema cannot say so and its
    bounds, which compare false with NaN, let NaN through (a NaN level would name files `snan`)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key '{key}': {value} is not a finite number")
    if isinstance(value, Mapping):
        for name, item in value.items():
            _check_finite(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, f"{key}.{index}")


def _check_results_dir(results_dir: str) -> None:
    """The results folder holds the study's outputs and nothing else, so deleting it loses no source and no
    output lands in git: it neither holds the repository (`/`, the checkout or a folder above it) nor lies in
    the repository outside results/ (anywhere else its files sit among the source, untracked but not ignored,
    and `git add -A` commits them). Resolved from the working directory, symlinks followed, as the outputs are."""
    results = Path(results_dir).resolve()
    if REPOSITORY.is_relative_to(results):
        where = "the repository itself" if results == REPOSITORY else f"which holds the repository {REPOSITORY}"
        raise ConfigError(
            f"config key 'results_dir': {results_dir!r} is {results}, {where}; give the study a "
            "folder of its own, e.g. results/<study>"
        )
    if results.is_relative_to(REPOSITORY) and not results.is_relative_to(RESULTS_FOLDER):
        raise ConfigError(
            f"config key 'results_dir': {results_dir!r} is {results}, inside the repository but "
            f"outside {RESULTS_FOLDER}, the one folder of it that git ignores; use results/<study> "
            "or a folder outside the repository"
        )


def _check_training(config: Mapping[str, Any]) -> None:
    """The dense job's clean phase fits in it, and every training job's lr warm-up ends before the job does
    (else the lr never reaches its peak and never decays): the dense job's, the control's (as long as an
    individual job) and each pruning arm's, a budget arm's of its own steps."""
    train = config["train"]
    if train["dense_clean_steps"] > train["dense_steps"]:
        raise ConfigError(
            f"config key 'train.dense_clean_steps': {train['dense_clean_steps']} clean steps exceed "
            f"the dense job's {train['dense_steps']} (train.dense_steps): wave_augment would never start"
        )
    if train["warmup_steps"] >= train["dense_steps"]:
        raise ConfigError(
            f"config key 'train.warmup_steps': the dense job's lr warm-up of {train['warmup_steps']} "
            f"steps is not shorter than the job ({train['dense_steps']} steps: train.dense_steps)"
        )
    key = "train.warmup_steps" if train["finetune_warmup_fraction"] is None else "train.finetune_warmup_fraction"
    seed = config["seeds"][0]  # any training seed: the warm-up does not depend on it
    jobs = [
        *(
            (arm, arm_training(config, arm, seed), arm_config(config, arm)["individual"]["steps"])
            for arm in pruning_arms(config, "individual")
        ),
        ("control", training(config, "control", seed), config["individual"]["steps"]),
        *(
            (arm, arm_training(config, arm, seed), supernet_spec(supernet(config, arm)).steps)
            for arm in pruning_arms(config, "omni")
        ),
    ]
    for arm, section, steps in jobs:
        warmup = training_spec(section).lr_warmup_steps(steps)
        if warmup >= steps:
            raise ConfigError(
                f"config key '{key}': the lr warm-up of {warmup} steps is not shorter than the "
                f"{arm} job's {steps} steps"
            )


def _check_arms(config: Mapping[str, Any]) -> None:
    """Variants override only what their kind reads and never take a replicate arm's name; a replicate is
    another dense model; only omni arms have supernets to search."""
    if config["seed"] in config["dense_replicates"]:
        raise ConfigError(
            f"config key 'dense_replicates': {config['seed']} is config `seed`, the study's own dense "
            "model; a replicate is trained with another seed"
        )
    for kind in PRUNING_KINDS:
        if 1 not in config[kind]["budget_multiples"]:
            raise ConfigError(
                f"config key '{kind}.budget_multiples': {config[kind]['budget_multiples']} lacks 1, the "
                f"study's own `{kind}` arm (every other multiple is measured against it)"
            )
    generated = [
        *(replicate_arm(kind, seed) for seed in config["dense_replicates"] for kind in PRUNING_KINDS),
        *(arm for kind in PRUNING_KINDS for arm in budget_multiples(config, kind).values() if arm != kind),
    ]
    taken = [arm for arm in generated if arm in config["variants"]]
    if taken:
        raise ConfigError(
            f"config key 'variants': {taken} are arms the study generates (dense_replicates, "
            "budget_multiples); name the variants otherwise"
        )
    for arm, overrides in config["variants"].items():
        if "control" in overrides.get("distill", {}):
            raise ConfigError(
                f"config key 'variants.{arm}.distill.control': the study has one control; set its "
                "teacher in distill.control"
            )
        if "budget_multiples" in overrides.get("omni", {}):
            raise ConfigError(
                f"config key 'variants.{arm}.omni.budget_multiples': budget multiples are the study's "
                "own arms'; set omni.budget_multiples"
            )
        if arm_kind(arm) == "individual" and "omni" in overrides:
            raise ConfigError(
                f"config key 'variants.{arm}.omni': an individual arm trains no supernet; "
                "its overrides may only be distill keys"
            )
    omni_arms = pruning_arms(config, "omni")
    unknown = [arm for arm in config["search"]["arms"] if arm not in omni_arms]
    if unknown:
        raise ConfigError(f"config key 'search.arms': {unknown} are not omni arms of this study {omni_arms}")
    private = [
        arm for arm in config["search"]["arms"] if arm_config(config, arm)["omni"]["private_parameters"] != "none"
    ]
    if private:
        raise ConfigError(
            f"config key 'search.arms': {private} have private per-level parameters "
            "(omni.private_parameters), which a per-layer mix of levels has no copy of"
        )


def _check_supernet(config: Mapping[str, Any], arm: str) -> None:
    """The checks of one omni arm's settings (`config` is the study's with the arm's overrides);
    a variant's errors name its entry under `variants`."""
    where = "" if arm == "omni" else f" (arm {arm}: config variants.{arm} overrides the study's keys)"
    weights, levels = config["omni"]["level_weights"], omni_levels(config, arm)
    outside = [level for level in levels if level not in config["sparsity"]["levels"]]
    if outside:
        raise ConfigError(
            f"config key 'omni.levels'{where}: {outside} are not in sparsity.levels "
            f"{config['sparsity']['levels']} (an omni arm is compared with the individual job of each "
            "level)"
        )
    _check_matched_mechanics(config, where)
    if weights is not None and config["omni"]["level_space"] != "discrete":
        raise ConfigError(
            f"config key 'omni.level_weights'{where}: weights are per level of sparsity.levels; "
            "omni.level_space 'continuous' draws from a range"
        )
    if isinstance(weights, list) and len(weights) != len(levels):
        raise ConfigError(
            f"config key 'omni.level_weights'{where}: {len(weights)} weights for {len(levels)} levels "
            f"of the arm's levels {levels}"
        )
    choices = config["search"]["levels"]
    outside = [level for level in levels if not min(choices) <= level <= max(choices)]
    if config["omni"]["layerwise_rate"] > 0 and outside:
        raise ConfigError(
            f"config key 'omni.layerwise_rate'{where}: sparsity levels {outside} lie outside the "
            f"range of search.levels {choices}, so no per-layer vector of those has their size"
        )
    if config["distill"]["omni"] == "inplace" and config["omni"]["sampling"] == "uniform":
        raise ConfigError(
            f"config key 'distill.omni'{where}: in-place distillation needs several sub-networks per "
            "step (the densest teaches the others), but omni.sampling 'uniform' trains one; use "
            "sandwich or fixed_set, or distill.omni: dense"
        )
    omni, equal = config["omni"], equal_compute_budget(config)
    if omni["budget"] is not None and omni["budget"] != equal and not omni["unequal_budget"]:
        raise ConfigError(
            f"config key 'omni.budget'{where}: {omni['budget']} training passes is not what one "
            f"individual job with the same teacher costs ({equal:g}: individual.steps, plus the "
            f"teacher's forward passes at distill.teacher_forward_cost); use null, or set "
            f"omni.unequal_budget: true for a study that compares another budget on purpose"
        )
    planned = supernet_spec(supernet(config, arm))
    steps, warmup = planned.steps, planned.warmup_steps
    if omni["warmup_fraction"] > 0 and warmup < omni["mask_update_every"]:
        raise ConfigError(
            f"config key 'omni.warmup_fraction'{where}: the supernet's warm-up of {warmup} steps "
            f"(omni.warmup_fraction x {steps} steps of {supernet_budget(config):g} passes) is "
            f"shorter than one mask update (omni.mask_update_every = {omni['mask_update_every']}): "
            f"the highest level would jump from dense to its final sparsity"
        )


def _check_matched_mechanics(config: Mapping[str, Any], where: str) -> None:
    """Per-level ramps, settled rankings and private copies are defined on discrete levels; a freeze
    fraction only means something for settled rankings."""
    omni = config["omni"]
    per_level = (
        ("level_ramps", omni["level_ramps"] == "individual"),
        ("rankings", omni["rankings"] == "settled"),
        ("private_parameters", omni["private_parameters"] != "none"),
    )
    for key, on in per_level:
        if on and omni["level_space"] != "discrete":
            raise ConfigError(
                f"config key 'omni.{key}'{where}: {omni[key]!r} follows each level of omni.levels; "
                "omni.level_space 'continuous' has no levels"
            )
    if omni["freeze_fraction"] is not None and omni["rankings"] != "settled":
        raise ConfigError(
            f"config key 'omni.freeze_fraction'{where}: only settled rankings freeze "
            f"(omni.rankings is {omni['rankings']!r}); set omni.rankings: settled, or null"
        )


def _check_individual_schedule(config: Mapping[str, Any], arm: str) -> None:
    """A ramp long enough for the masks to grow gradually (`config`: the study's with the arm's overrides)."""
    individual = config["individual"]
    where = "" if arm == "individual" else f" (arm {arm}: {individual['steps']} steps)"
    ramp = round(individual["prune_fraction"] * individual["steps"])
    if ramp < individual["mask_update_every"]:
        raise ConfigError(
            f"config key 'individual.prune_fraction'{where}: the pruning ramp of {ramp} steps "
            f"(individual.prune_fraction x individual.steps) is shorter than one mask update "
            f"(individual.mask_update_every = {individual['mask_update_every']}): the masks would "
            f"jump from dense to the target"
        )
