"""The study as a function of its configuration: which models it trains and evaluates, where
every file lives, and what the final target asks for.

One place, read by every rule file and by the `all` rule, so the set of models cannot depend on
the order in which rule files are included (lists appended across includes silently lost
models when an include moved).
"""

from __future__ import annotations

import os
import re
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
from omni.config import REPOSITORY
from omni.job_names import (
    DEVICE_METRICS,
    EVALUATE,
    EXPORT_MODEL,
    EXPORT_RUNTIMES,
    EXTRACT_OMNI,
    EXTRACT_SEARCHED,
    SEARCH,
    TRAIN_CONTROL,
    TRAIN_DENSE,
    TRAIN_INDIVIDUAL,
    TRAIN_OMNI,
)
from omni.job_params import (
    budget_levels,
    budget_multiples,
    dense_seed_of,
    dense_seeds,
    omni_levels,
    pruning_arms,
)

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


SEED_DIR = re.compile(r"seed(\d+)")  # seed_dir's names


def seed_of_path(path: str | os.PathLike[str]) -> int | None:
    """The training seed a file of this layout belongs to (its seed_dir level), None for a shared job's (data)."""
    seeds = [int(match.group(1)) for part in Path(path).parts if (match := SEED_DIR.fullmatch(part))]
    return seeds[-1] if seeds else None


def model_label(arm: str, tag: str) -> str:
    """A model in a legend: its arm, and its tag where that says more (`individual s0.9`, `dense`)."""
    return arm if arm == tag else f"{arm} {tag}"


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

    def train_log_labels(self) -> list[str]:
        """The model of each of train_logs, in its order, as a legend names it (the seeds of a model share it)."""
        return [model_label(arm, tag) for arm, _, tag in self.trained_models()]

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
                self.benchmark(TRAIN_CONTROL, seed),
                *(
                    self.benchmark(TRAIN_INDIVIDUAL, arm, seed, level_tag(level))
                    for arm in self.individual_arms
                    for level in self.levels
                ),
            ]
            for arm in self.omni_arms:
                per_seed += [
                    self.benchmark(TRAIN_OMNI, arm, seed),
                    *(self.benchmark(EXTRACT_OMNI, arm, seed, level_tag(level)) for level in self.levels_of(arm)),
                ]
            for arm in self.searched_arms:
                per_seed += [
                    self.benchmark(SEARCH, arm, seed),
                    *(self.benchmark(EXTRACT_SEARCHED, arm, seed, budget_tag(budget)) for budget in self.budgets),
                ]
        per_model_rules = (EXPORT_MODEL, *((EXPORT_RUNTIMES,) if self.runtime_exports else ()), DEVICE_METRICS)
        per_model = [
            *(
                self.benchmark(rule, arm, seed_dir(seed), tag)
                for rule in per_model_rules
                for arm, seed, tag in self.evaluated_models()
            ),
            *(
                self.benchmark(EVALUATE, arm, seed_dir(seed), tag, split)
                for arm, seed, tag in self.evaluated_models()
                for split in self.eval_splits
            ),
        ]
        dense = [self.benchmark(TRAIN_DENSE, seed_dir(seed)) for seed in self.dense_seeds]
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
