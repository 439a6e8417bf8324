"""What each job reads from the configuration: the `params:` of its rule.

Snakemake reruns a job when one of its params changes, so the values a job's outputs depend on
and the values it is given must be the same set. Each function here is that set for one kind
of job, and the job receives nothing else: a value a job reads but its rule did not declare is
a KeyError, never a silent stale result. Sections are plain dicts with sorted keys (Snakemake
compares params by their repr; dataclasses it cannot represent would never trigger a rerun).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omni.arms import PRUNING_KINDS, SEARCHED_SUFFIX, arm_kind
from omni.config import model_preset
from omni.data.sources import KALDI_SEGMENTS, source_files
from omni.data.text import read_replacements
from omni.jobs.specs import OPTIONAL_TRAINING_KEYS, supernet_spec

Config = Mapping[str, Any]
Section = dict[str, Any]

BEAM_DECODES = frozenset({"beam-full", "beam-streaming"})
MASK_KEYS = ("granularity", "block_shape", "prunable", "include_predictor", "include_joiner", "include_io_linears")
# train.* values every training job reads; the arm-specific ones (steps, lr, clean steps, curriculum) come apart.
SHARED_TRAIN_KEYS = (
    "cpu_processes",
    "batch_frames",
    "weight_decay",
    "warmup_steps",
    "grad_clip",
    "checkpoint_every",
    "log_every",
    "max_consecutive_nonfinite",
    "cache_audio",
)


def canonical(value: Any) -> Any:
    """Dicts with sorted keys, recursively: reordering a YAML section is not a change."""
    if isinstance(value, Mapping):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return value


def _pick(section: Mapping[str, Any], keys: tuple[str, ...] | list[str]) -> Section:
    return canonical({key: section[key] for key in keys})


def declared_when_on(on: bool, **entries: Any) -> Section:
    """`entries` if their option is on, else nothing. Options added to the pipeline after jobs have run
    are declared this way, so a job with the option off keeps its params, and so its outputs."""
    return entries if on else {}


def corpus(config: Config) -> Section:
    """The synthetic corpus is a function of its seed, voices, text grammar and rate; a LibriSpeech
    tree of its root and subsets."""
    if config["corpus"] == "librispeech":
        return canonical({"kind": "librispeech", **config["librispeech"]})
    if config["corpus"] == "manifests":
        return canonical({"kind": "manifests", "listings": config["manifests"]})
    return canonical(
        {
            "kind": "synth",
            "seed": config["seed"],
            "synth": config["synth"],
            "alphabet": config["data"]["alphabet"],
            "sample_rate": config["data"]["sample_rate"],
        }
    )


def corpus_listings(config: Config) -> list[str]:
    """The files a user's corpus is listed in (corpus: manifests), as the corpus job's inputs: an edited
    listing rebuilds the manifests. Missing ones are left to the job, whose error names the config key."""
    if config["corpus"] != "manifests" or not config["manifests"]:
        return []
    files = [path for source in config["manifests"].values() for path in source_files(source)]
    optional = [
        Path(source["dir"]) / KALDI_SEGMENTS for source in config["manifests"].values() if source["format"] == "kaldi"
    ]
    return sorted(str(path) for path in files + optional if path.is_file())


def manifest(config: Config) -> Section:
    """The data section, its replacement table read in: an edited table reruns the manifests."""
    text = config["data"]["text"]
    pairs = [list(pair) for pair in read_replacements(text["replacements"])] if text["replacements"] else []
    return canonical({**config["data"], "text": {**text, "replacements": pairs}})


def logmel(config: Config) -> Section:
    """Audio -> normalised log-mel: what feature statistics, evaluation and the search need."""
    features = config["features"]
    return canonical(
        {
            "sample_rate": config["data"]["sample_rate"],
            "n_mels": features["n_mels"],
            "n_fft": features["n_fft"],
            "hop_length": features["hop_length"],
        }
    )


def feature_stats(config: Config) -> Section:
    """The log-mel settings, and the training sample the statistics are computed on when not all of it
    (features.stats_utterances; only then declared, so the full-set job never reruns for it)."""
    count = config["features"]["stats_utterances"]
    return canonical(
        {**logmel(config), **declared_when_on(count is not None, sample={"utterances": count, "seed": config["seed"]})}
    )


def augmentation(config: Config) -> Section:
    """Training-only input perturbations (waveform and SpecAugment)."""
    return _pick(config["features"], ("wave_augment", "spec_augment"))


def tokenizer(config: Config) -> Section:
    return canonical({"seed": config["seed"], **config["tokenizer"]})


def model(config: Config) -> Section:
    """The chosen preset's dimensions only: editing another preset changes no job."""
    return canonical({"input_dim": config["features"]["n_mels"], **model_preset(config)})


def training(config: Config, arm: str, seed: int) -> Section:
    """One training job's loop settings. The dense job trains from scratch at `train.lr` (with a
    clean phase and the length curriculum) with its dense model's seed (config `seed`, or one of
    `dense_replicates`); the pruning arms and the control start trained, at `train.finetune_lr`, with
    their run's training `seed` (one of `seeds`): for a given seed they see the same batches and
    schedule as each other."""
    train = config["train"]
    shared = {key: train[key] for key in SHARED_TRAIN_KEYS}
    run = {"seed": seed, "device": config["device"]}
    if arm == "dense":
        arm_values = {
            "steps": train["dense_steps"],
            "lr": train["lr"],
            "clean_steps": train["dense_clean_steps"],
            "sortagrad": train["sortagrad"],
        }
    else:
        arm_values = {"lr": train["finetune_lr"], "clean_steps": 0, "sortagrad": False}
    optional: Section = {}
    for key, off in OPTIONAL_TRAINING_KEYS.items():
        optional.update(declared_when_on(train[key] != off, **{key: train[key]}))
    fraction = train["finetune_warmup_fraction"]
    own_warmup = declared_when_on(arm != "dense" and fraction is not None, warmup_fraction=fraction)
    return canonical({**run, **shared, **arm_values, **optional, **own_warmup})


def control(config: Config) -> Section:
    """The dense-continued control trains as long as one pruning job (individual.steps), no masks, and
    learns from the teacher of the arms it controls (distill.control)."""
    return canonical({"steps": config["individual"]["steps"], **_distill_entry(config, "control")})


def masks(config: Config, arm: str = "individual") -> Section:
    """Which weights are prunable and how they are ranked, for one arm (a variant may prune in other
    units; a searched arm prunes as its supernet does); not the list of levels, so adding a level
    leaves every existing individual job, export and extraction alone."""
    return _pick(arm_config(config, arm.removesuffix(SEARCHED_SUFFIX))["sparsity"], MASK_KEYS)


def pruning_arms(config: Config, kind: str) -> list[str]:
    """The arms of one kind (`individual` or `omni`): the default arm first, then its variants."""
    return [kind, *(name for name in variants(config) if arm_kind(name) == kind)]


def replicate_arm(kind: str, dense_seed: int) -> str:
    """`omni`, 1240 -> `omni-dense1240`: the study's own arm of `kind` trained from another dense model."""
    return f"{kind}-dense{dense_seed}"


def budget_arm(kind: str, multiple: float) -> str:
    """`omni`, 2 -> `omni-x2`: the study's own arm of `kind` trained `multiple` times as long."""
    return f"{kind}-x{multiple:g}"


def variants(config: Config) -> dict[str, Mapping[str, Any]]:
    """Config `variants`; per seed of `dense_replicates` the study's own individual and omni arms
    trained from that dense model (only their `dense_seed` overridden); per budget multiple other than 1
    (`individual.budget_multiples`, `omni.budget_multiples`) the study's own arm at that budget."""
    replicates = {
        replicate_arm(kind, seed): {"dense_seed": seed} for seed in config["dense_replicates"] for kind in PRUNING_KINDS
    }
    budgets = {
        budget_arm(kind, multiple): _budget_overrides(config, kind, multiple)
        for kind in PRUNING_KINDS
        for multiple in config[kind]["budget_multiples"]
        if multiple != 1
    }
    return {**config["variants"], **replicates, **budgets}


def _budget_overrides(config: Config, kind: str, multiple: float) -> dict[str, Section]:
    """A budget arm's sections: `multiple` x the 1x job's steps (an individual job) or training passes (a
    supernet), and its lr warm-up the same fraction of its steps as the 1x job's (train.finetune_warmup_fraction,
    or when null the 1x job's warmup_steps over its steps). Its ramps are fractions of its steps already."""
    if kind == "individual":
        one_job_steps = config["individual"]["steps"]
        sized = {"individual": {**config["individual"], "steps": int(round(multiple * one_job_steps))}}
    else:
        one_job_steps = supernet_spec(supernet(config)).steps
        sized = {"omni": {**config["omni"], "budget": multiple * supernet_budget(config), "unequal_budget": True}}
    fraction = config["train"]["finetune_warmup_fraction"]
    warmup = config["train"]["warmup_steps"] / one_job_steps if fraction is None else fraction
    return {**sized, "train": {**config["train"], "finetune_warmup_fraction": warmup}}


def budget_multiples(config: Config, kind: str) -> dict[float, str]:
    """Budget multiple -> the arm of `kind` trained at it (1: the study's own arm)."""
    return {
        multiple: kind if multiple == 1 else budget_arm(kind, multiple) for multiple in config[kind]["budget_multiples"]
    }


def arm_training(config: Config, arm: str, seed: int) -> Section:
    """`training` of one pruning arm's job (a budget arm warms up over its own fraction of its steps)."""
    kind = arm_kind(arm)
    if kind is None:
        raise ValueError(f"arm_training: {arm!r} is not an arm name")
    return training(arm_config(config, arm), kind, seed)


def dense_seeds(config: Config) -> list[int]:
    """Every dense model of the study, by training seed: its own (config `seed`) first."""
    return [config["seed"], *config["dense_replicates"]]


def dense_seed_of(config: Config, arm: str) -> int:
    """The seed of the dense model an arm starts from and learns from (a variant's `dense_seed`)."""
    return variants(config).get(arm.removesuffix(SEARCHED_SUFFIX), {}).get("dense_seed", config["seed"])


def arm_config(config: Config, arm: str) -> Config:
    """The configuration one arm trains with: the study's, with the `distill`, `omni` and `sparsity`
    keys its entry in `variants` overrides (the default arms, `individual` and `omni`, override nothing;
    its dense model is `dense_seed_of`)."""
    if arm in PRUNING_KINDS:
        return config
    overrides = variants(config).get(arm, {})
    return {
        **config,
        **{section: {**config[section], **values} for section, values in overrides.items() if section != "dense_seed"},
    }


def teacher_of(config: Config, arm: str) -> str:
    """`dense` when the arm learns from the frozen dense model, else `none` (an in-place teacher is
    part of the supernet's own step, not an external one)."""
    teacher = arm_config(config, arm)["distill"][arm_kind(arm)]
    return "dense" if teacher == "dense" else "none"


def teachers(config: Config) -> Section:
    """What the study's own arms learn from besides the labels: `individual` none | dense, `omni` none |
    dense | inplace, `control` none | dense (the tables' caption says so)."""
    return {
        "individual": config["distill"]["individual"],
        "omni": config["distill"]["omni"],
        "control": config["distill"]["control"],
    }


def paired_individual(config: Config) -> dict[str, str]:
    """Omni arm -> the individual arm it is compared with: the one with the same external teacher, the
    same pruning unit and the same dense model, so neither side of a difference has a teacher, a unit or
    a starting point the other lacks (`individual` when none matches)."""

    def like(arm: str) -> tuple[str, Section, int]:
        return teacher_of(config, arm), masks(config, arm), dense_seed_of(config, arm)

    individual_arms = pruning_arms(config, "individual")
    return {
        arm: next((other for other in individual_arms if like(other) == like(arm)), "individual")
        for arm in pruning_arms(config, "omni")
    }


def dense_comparisons(config: Config) -> list[Section]:
    """Per dense model, the study's own omni arm and the individual arm it is compared with: the
    primary endpoint's pairs (the study's own dense model first)."""

    def own(kind: str, seed: int) -> str:
        return kind if seed == config["seed"] else replicate_arm(kind, seed)

    return [
        {"dense_seed": seed, "omni": own("omni", seed), "individual": own("individual", seed)}
        for seed in dense_seeds(config)
    ]


def on_other_dense(config: Config) -> list[str]:
    """The pruning arms trained from a dense model other than the control's: no damage columns."""
    return [
        arm
        for kind in PRUNING_KINDS
        for arm in pruning_arms(config, kind)
        if dense_seed_of(config, arm) != config["seed"]
    ]


def individual(config: Config, arm: str = "individual") -> Section:
    arm_settings = arm_config(config, arm)
    schedule = {key: value for key, value in arm_settings["individual"].items() if key != "budget_multiples"}
    return canonical({**schedule, **_distill_entry(arm_settings, "individual")})


def _distill_entry(config: Config, kind: str) -> Section:
    """`{"distill": {teacher, weight, form}}` when the arm has a teacher (`distill.individual` /
    `distill.omni`), else nothing: a teacher-less job's section, and so its outputs, never change
    with the distillation settings. A supernet's dense teacher also carries its forward cost, which
    its budget counts."""
    settings = config["distill"]
    entry = {
        "teacher": settings[kind],
        "weight": settings["weight"],
        "form": settings["form"],
        **declared_when_on(kind == "omni" and settings[kind] == "dense", forward_cost=settings["teacher_forward_cost"]),
    }
    return declared_when_on(settings[kind] != "none", distill=entry)


def equal_compute_budget(config: Config) -> float:
    """What ONE individual job with the supernet's teacher costs, in training passes: individual.steps
    passes, plus one dense-teacher forward per step at distill.teacher_forward_cost of a pass."""
    steps = config["individual"]["steps"]
    if config["distill"]["omni"] != "dense":
        return steps
    return steps * (1 + config["distill"]["teacher_forward_cost"])


def supernet_budget(config: Config) -> float:
    """Training passes of the supernet job: omni.budget, or when null the equal-compute budget."""
    budget = config["omni"]["budget"]
    return equal_compute_budget(config) if budget is None else budget


# omni.* keys added after jobs had run, each with its off value: declared only when on (a supernet with
# today's mechanics keeps its params, and so its outputs).
SUPERNET_OPTIONS = {
    "level_ramps": "shared",
    "rankings": "moving",
    "freeze_fraction": None,
    "distinct_passes": False,
    "level_loss": "utterance",
    "levels": None,
    "private_parameters": "none",
}


def omni_levels(config: Config, arm: str = "omni") -> list[float]:
    """The levels an omni arm's supernet trains and is cut at: omni.levels, or sparsity.levels when null
    (a decomposition study trains supernets of one or two levels beside the full one)."""
    levels = arm_config(config, arm)["omni"]["levels"]
    return list(config["sparsity"]["levels"] if levels is None else levels)


def supernet(config: Config, arm: str = "omni") -> Section:
    """The arm's omni settings with the budget resolved, the levels the supernet samples, and with
    per-layer passes the per-layer choices (search.levels). Matched mechanics carry what they follow:
    individual ramps the individual job's schedule, settled rankings their freeze fraction (null:
    where the individual ramp ends)."""
    arm_settings = arm_config(config, arm)
    omni, individual = arm_settings["omni"], arm_settings["individual"]
    settings = {
        key: value
        for key, value in omni.items()
        if key not in ("unequal_budget", "budget_multiples", *SUPERNET_OPTIONS)
    }
    layerwise = declared_when_on(omni["layerwise_rate"] > 0, layer_levels=config["search"]["levels"])
    freeze = individual["prune_fraction"] if omni["freeze_fraction"] is None else omni["freeze_fraction"]
    options = {
        **declared_when_on(
            omni["level_ramps"] == "individual",
            level_ramps="individual",
            individual_ramp=_pick(individual, ("prune_fraction", "mask_update_every")),
        ),
        **declared_when_on(omni["rankings"] == "settled", settled_rankings={"freeze_fraction": freeze}),
        **declared_when_on(omni["distinct_passes"], distinct_passes=True),
        **declared_when_on(omni["level_loss"] == "frame", level_loss="frame"),
        **declared_when_on(omni["private_parameters"] != "none", private_parameters=omni["private_parameters"]),
    }
    return canonical(
        {
            **settings,
            "budget": supernet_budget(arm_settings),
            "levels": omni_levels(config, arm),
            **_distill_entry(arm_settings, "omni"),
            **layerwise,
            **options,
        }
    )


def budget_levels(config: Config) -> list[float]:
    """Levels whose uniform-model size is a search budget: search.budgets, or sparsity.levels."""
    levels = config["search"]["budgets"]
    return [float(level) for level in (config["sparsity"]["levels"] if levels is None else levels)]


def dev_split(config: Config) -> Section:
    """Which dev speakers the search may score (the rest is the reported dev column)."""
    return {"search_fraction": config["search"]["dev_fraction"], "seed": config["seed"]}


def search(config: Config, seed: int) -> Section:
    """The evolution's settings, its budgets resolved, and its fitness: the tables' decode
    (report.table_decode) at the evaluation batch size, with the beam width when that decode is a beam.
    `seed` is the training seed of the supernet it searches (one search per run)."""
    settings = {key: value for key, value in config["search"].items() if key not in ("arms", "budgets", "dev_fraction")}
    decode = config["report"]["table_decode"]
    fitness = {"decode": decode, "batch_size": config["evaluate"]["batch_size"]}
    if decode in BEAM_DECODES:
        fitness["beam_width"] = config["evaluate"]["beam_width"]
    return canonical(
        {**settings, **fitness, "budgets": budget_levels(config), "seed": seed, "device": config["device"]}
    )


def evaluation(config: Config) -> Section:
    """Decode settings; the beam width only matters (and is only declared) when a beam decode runs."""
    evaluate = config["evaluate"]
    section = {
        "seed": config["seed"],
        "device": config["device"],
        "decodes": evaluate["decodes"],
        "batch_size": evaluate["batch_size"],
    }
    if BEAM_DECODES & set(evaluate["decodes"]):
        section["beam_width"] = evaluate["beam_width"]
    return canonical(section)


def speed(config: Config) -> Section:
    """What a device_metrics job decodes and how long it times each candidate kernel; the WER of its
    exports is decoded in the evaluation's batches."""
    return canonical(
        {
            **{key: config["speed"][key] for key in ("utterances", "kernel_repeats", "peak_memory")},
            "batch_size": config["evaluate"]["batch_size"],
        }
    )


def runtimes(config: Config) -> list[str]:
    """The on-device runtimes every evaluated model is exported to and measured in (omni.deploy)."""
    return list(config["speed"]["runtimes"])


def comparison(config: Config) -> Section:
    """What the WER tables and figures compare: splits, decodes, the tables' decode, the bootstrap."""
    report = config["report"]
    return canonical(
        {
            "splits": config["evaluate"]["splits"],
            "decodes": config["evaluate"]["decodes"],
            "table_decode": report["table_decode"],
            "bootstrap_resamples": report["bootstrap_resamples"],
            "bootstrap_seed": report["bootstrap_seed"],
            "confidence": report["confidence"],
            "bootstrap_min_speakers": report["bootstrap_min_speakers"],
        }
    )
