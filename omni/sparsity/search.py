"""Layer-wise sparsity search on the trained supernet, fine-tune free (Yang et al. 2022, Sec. 2.3).

A candidate is one sparsity level per prunable layer (the genome); its size is exact, from the
masks the supernet's single ranking gives at each level, and it is scored on dev WER with no
training at all. The search is the Once-for-All / AttentiveNAS evolution: a population per size
budget, the best fraction kept as parents (elitism), children by crossover and mutation, and
any child over its budget repaired by raising the sparsity of random layers until it fits.

Design choices, and why:

- One population per budget, all evolved in lockstep (generation g of every budget before
  generation g + 1 of any): selection differs per budget, and the evaluation budget running out
  then cuts every budget at the same depth instead of starving the last ones.
- The search stops after a fixed number of candidate evaluations, never on wall time: the same
  seed gives the same front on any machine, however fast (the wall time is only reported).
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

import numpy as np
from tqdm import tqdm

from omni.arms import budget_tag
from omni.sparsity.masks import LayerRanking, allocation_units

Genome = tuple[float, ...]  # one sparsity level per layer, in SearchSpace.names order
Allocation = dict[str, float]  # layer name -> sparsity level (what extraction takes)
Fitness = Callable[[Allocation], float]  # lower is better (dev WER)
ExportSize = Callable[[Allocation], int]  # bytes of the candidate's compact export

# A child identical to a population member adds nothing; redraw it, but give up after this many
# draws per missing child (tiny search spaces run out of new genomes).
MAX_DRAWS_PER_CHILD = 20
# Uniform crossover: each layer comes from either parent with equal chance.
CROSSOVER_TAKE_FIRST = 0.5


# ----------------------------------------------------------------------------------------------
# Search space, sizes and budgets
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchSpace:
    """Layers, levels (ascending) and the exact number of parameters each level prunes per layer. A
    "layer" is what takes one level: a weight, or a structured group's weights together."""

    names: tuple[str, ...]
    levels: tuple[float, ...]
    pruned: tuple[Mapping[float, int], ...]  # per layer: level -> parameters pruned
    total_params: int  # whole model, prunable or not
    prunable_params: int
    members: tuple[tuple[str, ...], ...]  # per layer: the weights it sets

    @classmethod
    def from_rankings(
        cls, rankings: Mapping[str, LayerRanking], levels: Sequence[float], total_params: int
    ) -> SearchSpace:
        """Counts taken from the very masks extraction would make (one mask per weight and level)."""
        ordered = tuple(sorted(float(level) for level in levels))
        units = allocation_units(rankings)
        pruned = []
        prunable = 0
        for weights in units.values():
            numel = sum(math.prod(rankings[name].shape) for name in weights)
            pruned.append(
                {
                    level: numel - sum(int(rankings[name].mask(level).count_nonzero()) for name in weights)
                    for level in ordered
                }
            )
            prunable += numel
        return cls(
            tuple(units),
            ordered,
            tuple(pruned),
            total_params,
            prunable,
            tuple(tuple(weights) for weights in units.values()),
        )

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
        """Per weight (what extraction takes): each layer's level for every weight it sets."""
        return {name: level for weights, level in zip(self.members, genome) for name in weights}


@dataclass(frozen=True)
class Budget:
    """At most `max_params` kept parameters: the size of the uniform model at `level`."""

    tag: str
    level: float
    max_params: int


def make_budgets(space: SearchSpace, levels: Sequence[float]) -> list[Budget]:
    return [Budget(budget_tag(level), float(level), space.params_kept(space.uniform(level))) for level in levels]


# ----------------------------------------------------------------------------------------------
# Evolution
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvolutionSettings:
    population: int
    parents_fraction: float
    mutation_prob: float  # per layer: chance its level is redrawn in a child
    crossover_prob: float  # per child: chance it mixes two parents before mutation
    iterations: int  # generations after the initial population
    evaluations: int  # candidates decoded at most (the uniform seeds always are)
    seed: int

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


def random_search_best(space: SearchSpace, budget: Budget, evaluations: int, fitness: Fitness, seed: int) -> float:
    """The search's peer at equal cost: the uniform model, then allocations drawn uniformly (a level per layer,
    drawn again until it fits the budget: drawing is free, scoring costs), `evaluations` scored in all; the
    best fitness among them (fewer when a small space runs out of new allocations: MAX_DRAWS_PER_CHILD draws
    per missing one, as the evolution gives up). benchmarks/search_vs_random.py measures how many evaluations
    the evolution needs to beat it."""
    rng = np.random.default_rng(seed)
    scored = {space.uniform(budget.level)}
    for _ in range(MAX_DRAWS_PER_CHILD * evaluations):
        if len(scored) >= evaluations:
            break
        genome = tuple(space.levels[i] for i in rng.integers(len(space.levels), size=len(space.names)))
        if space.params_kept(genome) <= budget.max_params:
            scored.add(genome)
    return min(fitness(space.allocation(genome)) for genome in scored)


class _EvaluationsSpent(Exception):
    """Unwinds the generation loops when the evaluation budget is spent."""


class EvolutionarySearch:
    """Per-budget populations evolved in lockstep, with a shared fitness cache (see module doc)."""

    def __init__(
        self,
        space: SearchSpace,
        budgets: Sequence[Budget],
        settings: EvolutionSettings,
        fitness: Fitness,
        export_size: ExportSize | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
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
            self._score(self.space.uniform(budget.level), 0, budget.tag, capped=False)
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
        except _EvaluationsSpent:
            stopped = True
            tqdm.write(
                f"[search] {self.settings.evaluations} evaluations spent after generation {completed}: stopping",
                file=sys.stderr,
            )
        return SearchResult(
            self.space, self.budgets, list(self.history), self.cache_hits, completed, stopped, self.clock() - self.start
        )

    def _log_generation(self, iteration: int) -> None:
        """One line per budget and generation in the job log: best so far against uniform."""
        for budget in self.budgets:
            best = best_within(self.history, budget)
            uniform = self.cache[self.space.uniform(budget.level)]
            tqdm.write(
                f"[search] generation {iteration} {budget.tag}: best {best.fitness:.4f} "
                f"(uniform {uniform.fitness:.4f}), {len(self.history)} evaluated, {self.cache_hits} cache hits, "
                f"{self.clock() - self.start:.0f} s",
                file=sys.stderr,
            )

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

    def _score(self, genome: Genome, iteration: int, budget: str, capped: bool = True) -> Evaluated:
        if genome in self.cache:
            self.cache_hits += 1
            return self.cache[genome]
        if capped and len(self.history) >= self.settings.evaluations:
            raise _EvaluationsSpent
        began = self.clock()
        allocation = self.space.allocation(genome)
        fitness = float(self.fitness(allocation))
        size = None if self.export_size is None else int(self.export_size(allocation))
        finished = self.clock()
        entry = Evaluated(
            genome,
            self.space.params_kept(genome),
            self.space.sparsity(genome),
            fitness,
            size,
            iteration,
            budget,
            finished - began,
            finished - self.start,
        )
        self.cache[genome] = entry
        self.history.append(entry)
        return entry
