"""Layer-wise sparsity search on the trained supernet, fine-tune free (Yang et al. 2022, Sec. 2.3).

A candidate is one sparsity level per prunable layer (the genome); its size is exact, from the
masks the supernet's single ranking gives at each level, and it is scored on dev WER with no
training at all. The search is the Once-for-All / AttentiveNAS evolution: a population per size
budget, the best fraction kept as parents (elitism), children by crossover and mutation, and
any child over its budget repaired by raising the sparsity of random layers until it fits.

Design choices, and why:

- One population per budget, all evolved in lockstep (generation g of every budget before
  generation g + 1 of any): selection differs per budget, and a time budget running out then
  cuts every budget at the same depth instead of starving the last ones.
- Every population starts from the uniform model at its budget, and parents survive
  (elitism), so a budget's best can never be worse than uniform on the fitness.
- Fitness values are cached by genome across budgets; a genome is decoded at most once. The
  best per budget is chosen among ALL evaluated candidates that fit it, whichever population
  produced them.
- The size measure of the constraint is kept parameters (nnz): exact, additive over layers and
  monotone in each layer's level, which makes repair a simple walk. Export bytes are measured
  (a real fp32 compact export) for every evaluated candidate and reported next to it; they are
  not additive (zip records, pickled sizes), so no cheaper formula reproduces them exactly.
- Scoring masks one model copy in place from stored dense weights (w * mask, the very product
  `extract_subnetwork` computes), so a candidate costs a decode, not a re-extraction.
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm import tqdm

from omni.atomic import load_torch, write_dataframe, write_json
from omni.config import ConfigError
from omni.costs import CostMeter
from omni.data.batches import UtteranceSet
from omni.asr.evaluate import decode_split
from omni.sparsity.export import export_bytes, export_compact
from omni.data.features import load_feature_stats
from omni.asr.frontend import Frontend
from omni.data.manifest import read_manifest
from omni.asr.model import build_model
from omni.runtime import resolve_device, seed_everything, set_threads
from omni.sparsity.masks import LayerRanking, masks_at, original_weight, prunable_parameter_names, rank_layers
from omni.data.tokenizer import Tokenizer

Genome = tuple[float, ...]                 # one sparsity level per layer, in SearchSpace.names order
Allocation = dict[str, float]              # layer name -> sparsity level (what extraction takes)
Fitness = Callable[[Allocation], float]    # lower is better (dev WER)
ExportSize = Callable[[Allocation], int]   # bytes of the candidate's compact export

JOB = "search"
ARM = "omni-searched"
BUDGET_PREFIX = "b"
SEARCH_DECODE = "greedy-full"
EXPORT_DTYPE = torch.float32
SECONDS_PER_HOUR = 3600.0
# A child identical to a population member adds nothing; redraw it, but give up after this many
# draws per missing child (tiny search spaces run out of new genomes).
MAX_DRAWS_PER_CHILD = 20
# Uniform crossover: each layer comes from either parent with equal chance.
CROSSOVER_TAKE_FIRST = 0.5
LAYER_COLUMN_PREFIX = "s:"
DEV_WER = "dev_wer"


# ----------------------------------------------------------------------------------------------
# Search space, sizes and budgets
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchSpace:
    """Layers, levels (ascending) and the exact number of parameters each level prunes per layer."""

    names: tuple[str, ...]
    levels: tuple[float, ...]
    pruned: tuple[Mapping[float, int], ...]   # per layer: level -> parameters pruned
    total_params: int                         # whole model, prunable or not
    prunable_params: int

    @classmethod
    def from_rankings(cls, rankings: Mapping[str, LayerRanking], levels: Sequence[float],
                      total_params: int) -> SearchSpace:
        """Counts taken from the very masks extraction would make (one mask per layer and level)."""
        ordered = tuple(sorted(float(level) for level in levels))
        pruned = []
        prunable = 0
        for ranking in rankings.values():
            numel = math.prod(ranking.shape)
            pruned.append({level: numel - int(ranking.mask(level).count_nonzero()) for level in ordered})
            prunable += numel
        return cls(tuple(rankings), ordered, tuple(pruned), total_params, prunable)

    def params_kept(self, genome: Genome) -> int:
        return self.total_params - self.params_pruned(genome)

    def params_pruned(self, genome: Genome) -> int:
        return sum(table[level] for table, level in zip(self.pruned, genome))

    def sparsity(self, genome: Genome) -> float:
        """Overall sparsity of the prunable weights (what a uniform level s gives as ~s)."""
        return self.params_pruned(genome) / self.prunable_params

    def uniform(self, level: float) -> Genome:
        return (float(level),) * len(self.names)

    def allocation(self, genome: Genome) -> Allocation:
        return dict(zip(self.names, genome))


@dataclass(frozen=True)
class Budget:
    """At most `max_params` kept parameters: the size of the uniform model at `level`."""

    tag: str
    level: float
    max_params: int


def budget_tag(level: float) -> str:
    """`b0.7`: the tag the report and the extraction rule use for a searched model."""
    return f"{BUDGET_PREFIX}{level:g}"


def budget_levels(config: Mapping[str, Any]) -> list[float]:
    """search.budgets, or sparsity.levels when null; each must be a search level, because the
    uniform model at a budget seeds its population."""
    search_cfg = config["search"]
    key, levels = ("search.budgets", search_cfg["budgets"])
    if levels is None:
        key, levels = ("sparsity.levels", config["sparsity"]["levels"])
    missing = [level for level in levels if level not in search_cfg["levels"]]
    if missing:
        raise ConfigError(f"config key '{key}': budget levels {missing} are not in search.levels "
                          f"{search_cfg['levels']} (the uniform model at a budget seeds its search)")
    return [float(level) for level in levels]


def make_budgets(space: SearchSpace, levels: Sequence[float]) -> list[Budget]:
    return [Budget(budget_tag(level), float(level), space.params_kept(space.uniform(level))) for level in levels]


# ----------------------------------------------------------------------------------------------
# Evolution
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EvolutionSettings:
    population: int
    parents_fraction: float
    mutation_prob: float      # per layer: chance its level is redrawn in a child
    crossover_prob: float     # per child: chance it mixes two parents before mutation
    iterations: int           # generations after the initial population
    time_budget_s: float      # no new evaluation starts after this (the uniform seeds always run)
    seed: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> EvolutionSettings:
        s = config["search"]
        return cls(s["population"], s["parents_fraction"], s["mutation_prob"], s["crossover_prob"],
                   s["iterations"], s["time_budget_s"], config["seed"])

    @property
    def parents(self) -> int:
        return min(self.population, math.ceil(self.parents_fraction * self.population))


@dataclass(frozen=True)
class Evaluated:
    """One candidate decoded once; `budget` and `iteration` say where it was first generated."""

    genome: Genome
    params_kept: int
    sparsity: float
    fitness: float
    export_bytes: int | None
    iteration: int
    budget: str
    eval_s: float
    elapsed_s: float


@dataclass
class SearchResult:
    space: SearchSpace
    budgets: list[Budget]
    history: list[Evaluated]
    cache_hits: int
    iterations_completed: int
    stopped_early: bool
    elapsed_s: float

    def best(self, budget: Budget) -> Evaluated:
        return best_within(self.history, budget)

    def uniform(self, budget: Budget) -> Evaluated:
        genome = self.space.uniform(budget.level)
        return next(e for e in self.history if e.genome == genome)

    def pareto(self) -> list[Evaluated]:
        """Non-dominated in (kept parameters, fitness), smallest first."""
        front: list[Evaluated] = []
        for entry in sorted(self.history, key=lambda e: (e.params_kept, e.fitness, e.genome)):
            if not front or entry.fitness < front[-1].fitness:
                front.append(entry)
        return front


def _rank_key(entry: Evaluated) -> tuple[float, int, Genome]:
    return entry.fitness, entry.params_kept, entry.genome


def best_within(entries: Sequence[Evaluated], budget: Budget) -> Evaluated:
    """Lowest fitness among the entries that fit (ties: smaller, then genome), whichever
    budget's population produced them."""
    return min((e for e in entries if e.params_kept <= budget.max_params), key=_rank_key)


class _TimeBudgetExceeded(Exception):
    """Unwinds the generation loops when the wall-clock budget is spent."""


class EvolutionarySearch:
    """Per-budget populations evolved in lockstep, with a shared fitness cache (see module doc)."""

    def __init__(self, space: SearchSpace, budgets: Sequence[Budget], settings: EvolutionSettings,
                 fitness: Fitness, export_size: ExportSize | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.space = space
        self.budgets = list(budgets)
        self.settings = settings
        self.fitness = fitness
        self.export_size = export_size
        self.clock = clock
        # One generator per budget: a budget's draws never depend on the others' cache hits.
        self.rngs = {b.tag: np.random.default_rng([settings.seed, index]) for index, b in enumerate(self.budgets)}
        self.cache: dict[Genome, Evaluated] = {}
        self.history: list[Evaluated] = []
        self.cache_hits = 0
        self.start = 0.0

    def run(self) -> SearchResult:
        self.start = self.clock()
        for budget in self.budgets:
            self._score(self.space.uniform(budget.level), 0, budget.tag, enforce_time=False)
        populations: dict[str, list[Genome]] = {}
        completed, stopped = 0, False
        try:
            for budget in self.budgets:
                populations[budget.tag] = self._initial_population(budget)
            self._log_generation(0)
            for iteration in range(1, self.settings.iterations + 1):
                for budget in self.budgets:
                    populations[budget.tag] = self._next_generation(populations[budget.tag], budget, iteration)
                completed = iteration
                self._log_generation(iteration)
        except _TimeBudgetExceeded:
            stopped = True
            tqdm.write(f"[search] time budget of {self.settings.time_budget_s:g} s spent after generation "
                       f"{completed}: stopping", file=sys.stderr)
        return SearchResult(self.space, self.budgets, list(self.history), self.cache_hits, completed, stopped,
                            self.clock() - self.start)

    def _log_generation(self, iteration: int) -> None:
        """One line per budget and generation in the job log: best so far against uniform."""
        for budget in self.budgets:
            best = best_within(self.history, budget)
            uniform = self.cache[self.space.uniform(budget.level)]
            tqdm.write(f"[search] generation {iteration} {budget.tag}: best {best.fitness:.4f} "
                       f"(uniform {uniform.fitness:.4f}), {len(self.history)} evaluated, {self.cache_hits} cache hits, "
                       f"{self.clock() - self.start:.0f} s", file=sys.stderr)

    # -- populations

    def _initial_population(self, budget: Budget) -> list[Genome]:
        rng = self.rngs[budget.tag]
        population = [self.space.uniform(budget.level)]

        def draw() -> Genome:
            return self._repair(tuple(self._random_level(rng) for _ in self.space.names), budget, rng)

        population += self._distinct(draw, set(population), self.settings.population - 1)
        for genome in population:
            self._score(genome, 0, budget.tag)
        return population

    def _next_generation(self, population: list[Genome], budget: Budget, iteration: int) -> list[Genome]:
        rng = self.rngs[budget.tag]
        parents = sorted(population, key=lambda genome: _rank_key(self.cache[genome]))[: self.settings.parents]

        def draw() -> Genome:
            return self._repair(self._offspring(parents, rng), budget, rng)

        children = self._distinct(draw, set(parents), self.settings.population - len(parents))
        for child in children:
            self._score(child, iteration, budget.tag)
        return parents + children

    @staticmethod
    def _distinct(draw: Callable[[], Genome], taken: set[Genome], wanted: int) -> list[Genome]:
        found: list[Genome] = []
        for _ in range(MAX_DRAWS_PER_CHILD * wanted):
            if len(found) == wanted:
                break
            genome = draw()
            if genome not in taken:
                taken.add(genome)
                found.append(genome)
        return found

    # -- variation

    def _random_level(self, rng: np.random.Generator) -> float:
        return self.space.levels[int(rng.integers(len(self.space.levels)))]

    def _offspring(self, parents: Sequence[Genome], rng: np.random.Generator) -> Genome:
        first = parents[int(rng.integers(len(parents)))]
        if rng.random() < self.settings.crossover_prob:
            second = parents[int(rng.integers(len(parents)))]
            first = tuple(a if rng.random() < CROSSOVER_TAKE_FIRST else b for a, b in zip(first, second))
        return self._mutate(first, rng)

    def _mutate(self, genome: Genome, rng: np.random.Generator) -> Genome:
        """Each layer, with mutation_prob, moves to a different level drawn uniformly."""
        levels = self.space.levels
        mutated = []
        for level in genome:
            if len(levels) > 1 and rng.random() < self.settings.mutation_prob:
                others = [other for other in levels if other != level]
                level = others[int(rng.integers(len(others)))]
            mutated.append(level)
        return tuple(mutated)

    def _repair(self, genome: Genome, budget: Budget, rng: np.random.Generator) -> Genome:
        """Raise random layers one level at a time until the genome fits; it always ends, since
        every layer at the highest level is no bigger than the uniform model at the budget."""
        levels = self.space.levels
        repaired = list(genome)
        while self.space.params_kept(tuple(repaired)) > budget.max_params:
            raisable = [i for i, level in enumerate(repaired) if level < levels[-1]]
            layer = raisable[int(rng.integers(len(raisable)))]
            repaired[layer] = levels[levels.index(repaired[layer]) + 1]
        return tuple(repaired)

    # -- scoring

    def _score(self, genome: Genome, iteration: int, budget: str, enforce_time: bool = True) -> Evaluated:
        if genome in self.cache:
            self.cache_hits += 1
            return self.cache[genome]
        if enforce_time and self.clock() - self.start > self.settings.time_budget_s:
            raise _TimeBudgetExceeded
        began = self.clock()
        allocation = self.space.allocation(genome)
        fitness = float(self.fitness(allocation))
        size = None if self.export_size is None else int(self.export_size(allocation))
        finished = self.clock()
        entry = Evaluated(genome, self.space.params_kept(genome), self.space.sparsity(genome), fitness, size,
                          iteration, budget, finished - began, finished - self.start)
        self.cache[genome] = entry
        self.history.append(entry)
        return entry


# ----------------------------------------------------------------------------------------------
# Scoring sub-networks of a real supernet
# ----------------------------------------------------------------------------------------------

@dataclass
class DevSubset:
    """What a greedy full-utterance decode of the fixed dev subset needs (built once)."""

    utterances: UtteranceSet
    frontend: Frontend
    tokenizer: Tokenizer
    batch_size: int
    beam_width: int

    @property
    def audio_seconds(self) -> float:
        return sum(self.utterances.num_samples) / self.utterances.sample_rate


def load_dev_subset(config: Mapping[str, Any], manifest: Path, feature_stats: Path, tokenizer: Path,
                    right_context_length: int, device: torch.device) -> DevSubset:
    """The first search.dev_subset utterances by utt_id: a fixed set, whatever the manifest order."""
    sample_rate = config["data"]["sample_rate"]
    table = read_manifest(manifest).sort_values("utt_id", kind="stable").head(config["search"]["dev_subset"])
    frontend = Frontend(config["features"], sample_rate, load_feature_stats(feature_stats),
                        right_context_length).to(device)
    return DevSubset(UtteranceSet(table, None, sample_rate, cache_audio=True), frontend, Tokenizer(tokenizer),
                     config["evaluate"]["batch_size"], config["evaluate"]["beam_width"])


class SubnetworkScorer:
    """Sub-networks of one supernet artefact, scored by masking a single model copy in place."""

    def __init__(self, supernet: Mapping[str, Any], sparsity_cfg: Mapping[str, Any], device: torch.device) -> None:
        self.model_config = dict(supernet["model_config"])
        self.sparsity_cfg = sparsity_cfg
        self.device = device
        self.model = build_model(self.model_config)
        self.model.load_state_dict(supernet["state_dict"])
        self.model.to(device).eval()
        names = prunable_parameter_names(self.model, sparsity_cfg)
        self.rankings = rank_layers(self.model, names, sparsity_cfg["granularity"], sparsity_cfg["block_shape"])
        self._dense = {name: original_weight(self.model, name).detach().clone() for name in names}

    def space(self, levels: Sequence[float]) -> SearchSpace:
        total = sum(p.numel() for p in self.model.parameters())
        return SearchSpace.from_rankings(self.rankings, levels, total)

    def apply(self, allocation: Mapping[str, float]) -> dict[str, Tensor]:
        """Mask the model copy to `allocation`; returns the masks."""
        masks = masks_at(self.rankings, allocation)
        with torch.no_grad():
            for name, mask in masks.items():
                weight = original_weight(self.model, name)
                weight.copy_(self._dense[name] * mask.to(weight.dtype))
        return masks

    def state_dict(self, allocation: Mapping[str, float]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(masked state dict, masks): what `extract_subnetwork` returns for the same allocation."""
        masks = self.apply(allocation)
        # Copies: the live tensors change with the next candidate.
        return {name: t.detach().to("cpu", copy=True) for name, t in self.model.state_dict().items()}, masks

    def dev_wer(self, allocation: Mapping[str, float], dev: DevSubset) -> float:
        self.apply(allocation)
        _, summary = decode_split(self.model, self.model_config, dev.frontend, dev.utterances, dev.tokenizer,
                                  SEARCH_DECODE, dev.beam_width, dev.batch_size, self.device, "search")
        return summary["wer"]

    def export_bytes(self, allocation: Mapping[str, float]) -> int:
        """Bytes of the fp32 compact export, serialised exactly as the export rule writes it."""
        state, masks = self.state_dict(allocation)
        payload = export_compact(state, masks, self.model_config, EXPORT_DTYPE,
                                 self.sparsity_cfg["granularity"], self.sparsity_cfg["block_shape"])
        return export_bytes(payload)


# ----------------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------------

def short_layer_names(names: Sequence[str]) -> list[str]:
    """Drop the dotted prefix and suffix all names share (`transcriber...emformer_layers.` and
    `.weight`): short columns, still unique because only common parts go. A lone name shares
    nothing with anything, so it stays whole."""
    if len(names) < 2:
        return list(names)
    parts = [name.split(".") for name in names]
    shortest = min(len(p) for p in parts)
    head = 0
    while head < shortest - 1 and len({p[head] for p in parts}) == 1:
        head += 1
    tail = 0
    while tail < shortest - head - 1 and len({p[-1 - tail] for p in parts}) == 1:
        tail += 1
    return [".".join(p[head: len(p) - tail]) for p in parts]


def layer_columns(space: SearchSpace) -> list[str]:
    return [f"{LAYER_COLUMN_PREFIX}{short}" for short in short_layer_names(space.names)]


def candidates_frame(entries: Sequence[Evaluated], space: SearchSpace) -> pd.DataFrame:
    rows = [{"iteration": e.iteration, "budget": e.budget, "params_kept": e.params_kept,
             "export_bytes": e.export_bytes, "sparsity": e.sparsity, DEV_WER: e.fitness,
             "eval_s": e.eval_s, "elapsed_s": e.elapsed_s, **dict(zip(layer_columns(space), e.genome))}
            for e in entries]
    return pd.DataFrame(rows, columns=["iteration", "budget", "params_kept", "export_bytes", "sparsity", DEV_WER,
                                       "eval_s", "elapsed_s", *layer_columns(space)])


def best_summary(result: SearchResult) -> dict[str, Any]:
    """Per budget tag: the best allocation (full layer names, what extraction takes), its size
    and fitness, and the uniform model's, which the best can never be worse than."""
    summary = {}
    for budget in result.budgets:
        best, uniform = result.best(budget), result.uniform(budget)
        summary[budget.tag] = {
            "level": budget.level, "max_params": budget.max_params,
            "allocation": result.space.allocation(best.genome),
            **_entry_fields(best),
            "uniform": _entry_fields(uniform),
        }
    return summary


def _entry_fields(entry: Evaluated) -> dict[str, Any]:
    return {"params_kept": entry.params_kept, "export_bytes": entry.export_bytes, "sparsity": entry.sparsity,
            DEV_WER: entry.fitness}


@dataclass
class SearchPaths:
    supernet: Path
    manifest: Path
    feature_stats: Path
    tokenizer: Path
    pareto: Path
    history: Path
    best: Path
    cost: Path


def write_search_outputs(result: SearchResult, paths: SearchPaths) -> None:
    write_dataframe(paths.history, candidates_frame(result.history, result.space))
    write_dataframe(paths.pareto, candidates_frame(result.pareto(), result.space))
    write_json(paths.best, best_summary(result))


def run_search_job(config: Mapping[str, Any], paths: SearchPaths, threads: int) -> SearchResult:
    """The search stage: score sub-networks of the supernet on the dev subset, write its outputs."""
    set_threads(threads)
    seed_everything(config["seed"])
    device = resolve_device(config["device"])
    meter = CostMeter(JOB, ARM, None, device, threads)
    scorer = SubnetworkScorer(load_torch(paths.supernet), config["sparsity"], device)
    dev = load_dev_subset(config, paths.manifest, paths.feature_stats, paths.tokenizer,
                          scorer.model_config["right_context_length"], device)
    space = scorer.space(config["search"]["levels"])
    search = EvolutionarySearch(space, make_budgets(space, budget_levels(config)),
                                EvolutionSettings.from_config(config),
                                fitness=lambda allocation: scorer.dev_wer(allocation, dev),
                                export_size=scorer.export_bytes)
    result = search.run()
    write_search_outputs(result, paths)
    evaluations = len(result.history)
    meter.finish(paths.cost, steps=0, audio_hours=evaluations * dev.audio_seconds / SECONDS_PER_HOUR,
                 extra={"evaluations": evaluations, "cache_hits": result.cache_hits,
                        "iterations_completed": result.iterations_completed,
                        "stopped_early": result.stopped_early, "time_budget_s": config["search"]["time_budget_s"],
                        "dev_utterances": len(dev.utterances)})
    return result
