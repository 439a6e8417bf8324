"""How many evaluations the layer-wise search needs before it beats random allocations (its peer: what a user
would do instead), on a fitness whose optimum is known in kind: each layer's kept fraction costs its own
sensitivity per parameter pruned, so large insensitive layers should be pruned most (a knapsack).

Twelve layers of unequal sizes (256-4096 parameters) and sensitivities, the study's `search.levels` and
operators (config.yaml), the 0.7 budget; per setting, 20 seeds of the evolution (omni.sparsity.search, the
code the search job runs) and, at the same number of scored candidates, the uniform model plus uniformly
drawn allocations that fit the budget. Prints, per population x generations, the mean best fitness of each
(lower is better), their ratio and how many seeds the evolution wins. The fitness is a separable proxy for
dev WER, not WER: a real supernet's sensitivities interact, which a random draw ignores as well.

    .venv/bin/python benchmarks/search_vs_random.py [--config config.yaml] [--seeds 20]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omni.config import load_config  # noqa: E402
from omni.sparsity.masks import units_to_prune  # noqa: E402
from omni.sparsity.search import (  # noqa: E402
    Allocation,
    EvolutionarySearch,
    EvolutionSettings,
    SearchSpace,
    make_budgets,
    random_search_best,
)

LAYERS = 12
SETTINGS = ((None, None), (8, 6), (16, 10), (16, 30))  # (population, generations); None: the config's


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--seeds", type=int, default=20)
    return parser.parse_args()


def knapsack(levels: tuple[float, ...]) -> tuple[SearchSpace, list[float]]:
    sizes = [int(size) for size in torch.randint(256, 4096, (LAYERS,), generator=torch.Generator().manual_seed(1))]
    sensitivity = torch.rand(LAYERS, generator=torch.Generator().manual_seed(2)).tolist()
    names = tuple(f"layer{i}" for i in range(LAYERS))
    pruned = tuple({level: units_to_prune(level, size) for level in levels} for size in sizes)
    space = SearchSpace(names, levels, pruned, sum(sizes) + 1000, sum(sizes), tuple((name,) for name in names))
    return space, [weight * 4096 / size for weight, size in zip(sensitivity, sizes)]


def main() -> None:
    args = parse_args()
    search = load_config(Path(args.config))["search"]
    space, weights = knapsack(tuple(search["levels"]))

    def fitness(allocation: Allocation) -> float:
        return sum(weight * level for weight, level in zip(weights, allocation.values()))

    budget = make_budgets(space, [0.7])[0]
    print(
        f"{'population':>10} {'generations':>11} {'evaluations':>11} {'search':>8} {'random':>8} "
        f"{'ratio':>6} {'wins':>6}"
    )
    for population, generations in SETTINGS:
        population = population or search["population"]
        generations = generations or search["iterations"]
        searched, drawn, evaluations = [], [], []
        for seed in range(args.seeds):
            ticks = itertools.count().__next__  # a clock of 1 s per reading: never a wall-time stop
            evolution = EvolutionSettings(
                population=population,
                parents_fraction=search["parents_fraction"],
                mutation_prob=search["mutation_prob"],
                crossover_prob=search["crossover_prob"],
                iterations=generations,
                evaluations=10**6,
                seed=seed,
            )
            quiet = io.StringIO()
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):  # its per-generation log
                result = EvolutionarySearch(space, [budget], evolution, fitness, clock=ticks).run()
            evaluations.append(len(result.history))
            searched.append(result.best(budget).fitness)
            drawn.append(random_search_best(space, budget, len(result.history), fitness, seed))
        wins = sum(s < d for s, d in zip(searched, drawn))
        print(
            f"{population:>10} {generations:>11} {statistics.mean(evaluations):>11.0f} "
            f"{statistics.mean(searched):>8.3f} {statistics.mean(drawn):>8.3f} "
            f"{statistics.mean(searched) / statistics.mean(drawn):>6.3f} {wins:>3}/{args.seeds}"
        )


if __name__ == "__main__":
    main()
