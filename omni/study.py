"""The study as a function of its configuration: which models it trains and evaluates, where
every file lives, and what the final target asks for.

One place, read by every rule file and by the `all` rule, so the set of models cannot depend on
the order in which rule files are included (lists appended across includes silently lost
models when an include moved).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omni.arms import (
    CONTROL_TAG,
    DENSE_TAG,
    PRUNING_KINDS,
    SEARCHED_SUFFIX,
    arm_kind,
    budget_tag,
    level_tag,
    level_text,
)
from omni.config import REPOSITORY, ConfigError, model_preset
from omni.job_params import (
    arm_config,
    arm_training,
    budget_levels,
    budget_multiples,
    dense_seed_of,
    dense_seeds,
    equal_compute_budget,
    lr_warmup_steps,
    omni_levels,
    pruning_arms,
    replicate_arm,
    supernet,
    supernet_budget,
    training,
)
from omni.sparsity.budget import planned_steps

SPLITS = ("train", "dev", "test-clean", "test-other")
DEV_PARTS = ("dev-search", "dev-report")  # omni.data.dev_split: the search's speakers, the reported ones
DENSE = ("dense", DENSE_TAG)  # (arm, tag) of a dense model: the study's own (config `seed`) and its replicates
SUPERNET_TAG = "supernet"  # the tag of an omni arm's supernet (models/<omni arm>/seed<N>/supernet)
CONTROL = ("control", CONTROL_TAG)  # dense-continued: the dense model trained like a pruning job, no masks
WER_TABLES = (
    "wer.csv",
    "wer.md",
    "wer_vs_sparsity.csv",
    "wer_vs_sparsity.md",
    "wer_vs_sparsity.tex",
    "primary.csv",
    "primary.md",
)
COST_TABLES = ("cost.csv", "cost.md", "cost.tex")
STRATEGY_TABLES = ("strategies.csv", "strategies.md")
SPEED_TABLES = ("speed.csv", "speed.md")
FIGURES = ("pareto.png", "training_curves.png", "cost.png")
DIAGNOSTICS = ("diagnostics.csv", "diagnostics_voices.csv", "diagnostics.md")  # tables; figure: diagnostics.png
SPEED_FIGURES = ("speed.png",)
BUDGET_TABLES = ("budget.csv", "budget_break_even.csv", "budget.md")  # figure: budget.png; with budget multiples
RESULTS_FOLDER = REPOSITORY / "results"  # the one place in the repository for results: .gitignore keeps it out of git

Model = tuple[str, str, str]  # (arm, seed, tag): a trained or extracted model of one run


def seed_dir(seed: str | int) -> str:
    """`1235` -> `seed1235`: the path level of one training seed (`{seed}` gives the wildcard pattern)."""
    return f"seed{seed}"


@dataclass(frozen=True)
class Study:
    results: str
    levels: tuple[str, ...]  # sparsity levels as they appear in paths
    budgets: tuple[str, ...]  # search budget levels as they appear in paths
    eval_splits: tuple[str, ...]
    table_decode: str
    dense_seeds: tuple[str, ...]  # the dense models' training seeds: the study's own (config `seed`), its replicates
    seeds: tuple[str, ...]  # config `seeds`: every pruning arm, the control and the search run once each
    individual_arms: tuple[str, ...]  # `individual` and its variants (config `variants`)
    omni_arms: tuple[str, ...]  # `omni` and its variants
    searched_arms: tuple[str, ...]  # the omni arms whose supernets are searched (config search.arms)
    omni_levels: tuple[tuple[str, tuple[str, ...]], ...] = ()  # omni arm -> its levels where not all (omni.levels)
    arm_dense_seeds: tuple[tuple[str, str], ...] = ()  # pruning arm -> its dense model's seed where not the own
    budget_arms: tuple[str, ...] = ()  # the arms of budget multiples other than 1: tables/budget.* when any
    runtime_exports: bool = False  # every evaluated model exported to the on-device runtimes (speed.runtimes)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Study:
        return cls(
            results=config["results_dir"],
            levels=tuple(level_text(level) for level in config["sparsity"]["levels"]),
            budgets=tuple(level_text(level) for level in budget_levels(config)),
            eval_splits=tuple(config["evaluate"]["splits"]),
            table_decode=config["report"]["table_decode"],
            dense_seeds=tuple(str(seed) for seed in dense_seeds(config)),
            seeds=tuple(str(seed) for seed in config["seeds"]),
            individual_arms=tuple(pruning_arms(config, "individual")),
            omni_arms=tuple(pruning_arms(config, "omni")),
            searched_arms=tuple(config["search"]["arms"]),
            omni_levels=tuple(
                (arm, tuple(level_text(level) for level in omni_levels(config, arm)))
                for arm in pruning_arms(config, "omni")
                if omni_levels(config, arm) != list(config["sparsity"]["levels"])
            ),
            arm_dense_seeds=tuple(
                (arm, str(dense_seed_of(config, arm)))
                for kind in PRUNING_KINDS
                for arm in pruning_arms(config, kind)
                if dense_seed_of(config, arm) != config["seed"]
            ),
            budget_arms=tuple(
                arm for kind in PRUNING_KINDS for arm in budget_multiples(config, kind).values() if arm != kind
            ),
            runtime_exports=bool(config["speed"]["runtimes"]),
        )

    @property
    def budget_curve(self) -> bool:
        return bool(self.budget_arms)

    @staticmethod
    def searched(arm: str) -> str:
        """`omni-kd` -> `omni-kd-searched`: the arm of the searched models cut from that arm's supernets."""
        return f"{arm}{SEARCHED_SUFFIX}"

    def levels_of(self, arm: str) -> tuple[str, ...]:
        """The levels an arm has models at: every level, or an omni arm's own (omni.levels)."""
        return dict(self.omni_levels).get(arm, self.levels)

    def arms(self) -> tuple[str, ...]:
        """Every arm whose models the study evaluates, in table order."""
        return (
            "dense",
            CONTROL[0],
            *self.individual_arms,
            *self.omni_arms,
            *(self.searched(arm) for arm in self.searched_arms),
        )

    # -- where things live (wildcard patterns such as "{arm}" work as arguments)

    def path(self, *parts: str) -> str:
        return "/".join((self.results, *parts))

    def dense(self) -> Model:
        """The study's own dense model: the control's start and teacher, and the default arms'."""
        return self.dense_model(self.dense_seeds[0])

    def dense_model(self, seed: str) -> Model:
        return (DENSE[0], seed, DENSE[1])

    def dense_model_file(self, arm: str) -> str:
        """What a pruning arm starts from and learns from: its dense model's weights."""
        seed = dict(self.arm_dense_seeds).get(arm, self.dense_seeds[0])
        return self.trained_files(*self.dense_model(seed))["model"]

    def model_dir(self, arm: str, seed: str, tag: str) -> str:
        return self.path("models", arm, seed_dir(seed), tag)

    def deploy_dir(self, arm: str, seed: str, tag: str) -> str:
        """One model's runtime exports (omni.deploy.bundle): what `transcribe` and a device load."""
        return f"{self.model_dir(arm, seed, tag)}/deploy"

    def trained_files(self, arm: str, seed: str, tag: str) -> dict[str, str]:
        """A training job's declared outputs; its checkpoints live elsewhere (resume after a kill)."""
        folder = self.model_dir(arm, seed, tag)
        return {"model": f"{folder}/model.pt", "train_log": f"{folder}/train_log.csv", "cost": f"{folder}/cost.json"}

    def manifest(self, split: str) -> str:
        """A split's manifest; `dev-search` and `dev-report` are the speaker-disjoint parts of dev."""
        return self.path("data", "manifests", f"{split}.tsv")

    def feature_stats(self) -> str:
        return self.path("data", "feature_stats.json")

    def voices(self) -> str:
        """utterance -> speaker and voice (omni.data.voices): what the tables resample."""
        return self.path("data", "voices.tsv")

    def tokenizer(self) -> str:
        return self.path("data", "tokenizer.model")

    def eval_manifest(self, split: str) -> str:
        """What an evaluation of `split` scores: the reported part of dev, never the search's."""
        return self.manifest("dev-report" if split == "dev" else split)

    def checkpoints(self, arm: str, seed: str, tag: str) -> str:
        return self.path("checkpoints", arm, seed_dir(seed), tag)

    def eval_dir(self, arm: str, seed: str, tag: str, split: str) -> str:
        return self.path("eval", arm, seed_dir(seed), tag, split)

    # -- what the study holds

    def trained_models(self) -> list[Model]:
        """Every model a training job produces: the dense models, and per seed the control, K individual
        jobs and one supernet per arm."""
        per_seed = [
            (arm, seed, tag)
            for seed in self.seeds
            for arm, tag in (
                CONTROL,
                *((arm, level_tag(level)) for arm in self.individual_arms for level in self.levels),
                *((arm, SUPERNET_TAG) for arm in self.omni_arms),
            )
        ]
        return [*map(self.dense_model, self.dense_seeds), *per_seed]

    def evaluated_models(self) -> list[Model]:
        """Every model the tables compare: the dense models, and per seed the control, individual,
        omni and searched models."""
        per_seed = [
            (arm, seed, tag)
            for seed in self.seeds
            for arm, tag in (
                CONTROL,
                *(
                    (arm, level_tag(level))
                    for arm in (*self.individual_arms, *self.omni_arms)
                    for level in self.levels_of(arm)
                ),
                *((self.searched(arm), budget_tag(budget)) for arm in self.searched_arms for budget in self.budgets),
            )
        ]
        return [*map(self.dense_model, self.dense_seeds), *per_seed]

    def eval_summaries(self) -> list[str]:
        return [
            f"{self.eval_dir(*model, split)}/summary.json"
            for model in self.evaluated_models()
            for split in self.eval_splits
        ]

    def eval_utterances(self) -> list[str]:
        """Per-utterance errors in the tables' decode: what the paired bootstrap resamples."""
        return [
            f"{self.eval_dir(*model, split)}/{self.table_decode}.tsv"
            for model in self.evaluated_models()
            for split in self.eval_splits
        ]

    def train_logs(self) -> list[str]:
        return [self.trained_files(*model)["train_log"] for model in self.trained_models()]

    def cost_records(self) -> list[str]:
        """Every job's cost record: training, extraction, search and evaluation."""
        training = [self.trained_files(*model)["cost"] for model in self.trained_models()]
        extraction = [
            f"{self.model_dir(*model)}/cost.json" for model in self.evaluated_models() if arm_kind(model[0]) == "omni"
        ]
        search = [self.search_file(arm, seed, "cost.json") for arm in self.searched_arms for seed in self.seeds]
        evaluation = [
            f"{self.eval_dir(*model, split)}/cost.json"
            for model in self.evaluated_models()
            for split in self.eval_splits
        ]
        return [*training, *extraction, *search, *evaluation]

    def benchmark(self, rule: str, *parts: str) -> str:
        """Snakemake's benchmark file of one job: `<rule>.tsv`, or `<rule>/<parts>.tsv` for a rule with wildcards."""
        if not parts:
            return self.path("benchmarks", f"{rule}.tsv")
        return self.path("benchmarks", rule, *parts[:-1], f"{parts[-1]}.tsv")

    def benchmark_files(self) -> list[str]:
        """The benchmark file of every job of this study but the report's own: what the cost account
        reads (never the whole folder, which keeps files of jobs an earlier configuration ran)."""
        data = [
            self.benchmark("build_corpus"),
            *(self.benchmark("manifest", split) for split in SPLITS),
            self.benchmark("split_dev"),
            self.benchmark("feature_stats"),
            self.benchmark("tokenizer"),
            self.benchmark("voices"),
        ]
        per_seed = []
        for seed in map(seed_dir, self.seeds):
            per_seed += [
                self.benchmark("train_control", seed),
                *(
                    self.benchmark("train_individual", arm, seed, level_tag(level))
                    for arm in self.individual_arms
                    for level in self.levels
                ),
            ]
            for arm in self.omni_arms:
                per_seed += [
                    self.benchmark("train_omni", arm, seed),
                    *(self.benchmark("extract_omni", arm, seed, level_tag(level)) for level in self.levels_of(arm)),
                ]
            for arm in self.searched_arms:
                per_seed += [
                    self.benchmark("search", arm, seed),
                    *(self.benchmark("extract_searched", arm, seed, budget_tag(budget)) for budget in self.budgets),
                ]
        per_model_rules = ("export_model", *(("export_runtimes",) if self.runtime_exports else ()), "device_metrics")
        per_model = [
            *(
                self.benchmark(rule, arm, seed_dir(seed), tag)
                for rule in per_model_rules
                for arm, seed, tag in self.evaluated_models()
            ),
            *(
                self.benchmark("evaluate", arm, seed_dir(seed), tag, split)
                for arm, seed, tag in self.evaluated_models()
                for split in self.eval_splits
            ),
        ]
        dense = [self.benchmark("train_dense", seed_dir(seed)) for seed in self.dense_seeds]
        return [*data, *dense, *per_seed, *per_model]

    def diagnostic_runs(self, pairs: Mapping[str, str], split: str) -> list[dict[str, Any]]:
        """Per omni arm, seed and level, the files omni.results.diagnostics compares (the supernet's log
        and extracted model against its paired individual job's, and both evaluations of `split`); not the
        budget arms, whose steps outrun their individual job's (the diagnostics pair equal steps)."""
        runs = []
        for arm in (arm for arm in self.omni_arms if arm not in self.budget_arms):
            individual = pairs.get(arm, "individual")
            for seed in self.seeds:
                for level in self.levels_of(arm):
                    tag = level_tag(level)
                    runs.append(
                        {
                            "arm": arm,
                            "paired_individual": individual,
                            "seed": int(seed),
                            "level": float(level),
                            "omni_log": self.trained_files(arm, seed, SUPERNET_TAG)["train_log"],
                            "individual_log": self.trained_files(individual, seed, tag)["train_log"],
                            "omni_model": f"{self.model_dir(arm, seed, tag)}/model.pt",
                            "individual_model": self.trained_files(individual, seed, tag)["model"],
                            "omni_eval": self.eval_dir(arm, seed, tag, split),
                            "individual_eval": self.eval_dir(individual, seed, tag, split),
                        }
                    )
        return runs

    def device_metrics(self, arm: str, seed: str, tag: str) -> str:
        """One model's device_metrics record."""
        return self.path("speed", arm, seed_dir(seed), f"{tag}.json")

    def device_metrics_files(self) -> list[str]:
        return [self.device_metrics(*model) for model in self.evaluated_models()]

    def search_file(self, arm: str, seed: str, name: str) -> str:
        """A file of the search on one seed's supernet of an omni arm."""
        return self.path("search", arm, seed_dir(seed), name)

    def budget_cost_records(self) -> list[str]:
        """The cost records the budget curve's dense-job unit D is measured from: the dense job and
        every individual(1x) job."""
        return [
            self.trained_files(*model)["cost"]
            for model in self.trained_models()
            if model[0] in (DENSE[0], "individual")
        ]

    def table(self, name: str) -> str:
        return self.path("tables", name)

    def figure(self, name: str) -> str:
        return self.path("figures", name)

    def final_targets(self) -> list[str]:
        """What `snakemake` with no target builds: the data stage's products, every evaluation,
        each seed's search front, every table and figure."""
        data = [
            *(self.manifest(split) for split in (*SPLITS, *DEV_PARTS)),
            self.feature_stats(),
            self.tokenizer(),
            self.voices(),
        ]
        search = [
            self.search_file(arm, seed, name)
            for arm in self.searched_arms
            for seed in self.seeds
            for name in ("pareto.csv", "history.csv")
        ]
        report = [
            *(self.table(name) for name in (*WER_TABLES, *COST_TABLES, *STRATEGY_TABLES, *SPEED_TABLES, *DIAGNOSTICS)),
            *(self.figure(name) for name in (*FIGURES, *SPEED_FIGURES, "diagnostics.png")),
        ]
        budget = [*map(self.table, BUDGET_TABLES), self.figure("budget.png")] if self.budget_curve else []
        return [*data, *self.eval_summaries(), *search, *report, *budget]


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
            (arm, arm_training(config, arm, seed), planned_steps(supernet(config, arm))[0])
            for arm in pruning_arms(config, "omni")
        ),
    ]
    for arm, section, steps in jobs:
        warmup = lr_warmup_steps(section, steps)
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
    steps, warmup = planned_steps(supernet(config, arm))
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
