# Stage 5: layer-wise sparsity search on the supernet (fine-tune free), then the extraction of
# the best per-layer mix under each size budget. A budget is a level: the size (kept parameters)
# of the uniform model at that level, from search.budgets or else sparsity.levels.
import re

_BUDGET_LEVELS = config["search"]["budgets"]
_BUDGET_KEY = "search.budgets"
if _BUDGET_LEVELS is None:
    _BUDGET_LEVELS, _BUDGET_KEY = config["sparsity"]["levels"], "sparsity.levels"
# omni.search.budget_levels checks the same; failing here stops the DAG before any job runs.
_UNSEARCHABLE = [level for level in _BUDGET_LEVELS if level not in config["search"]["levels"]]
if _UNSEARCHABLE:
    raise ValueError(f"config key '{_BUDGET_KEY}': budget levels {_UNSEARCHABLE} are not in search.levels "
                     f"{config['search']['levels']} (the uniform model at a budget seeds its search)")
SEARCH_BUDGETS = [f"{level:g}" for level in _BUDGET_LEVELS]


rule search:
    """Evolution over per-layer sparsity under every budget, scored on a fixed dev subset."""
    input:
        supernet=rules.train_omni.output.model,
        manifest=f"{R}/data/manifests/dev.tsv",
        feature_stats=f"{R}/data/feature_stats.json",
        tokenizer=f"{R}/data/tokenizer.model",
    output:
        pareto=f"{R}/search/pareto.csv",
        history=f"{R}/search/history.csv",
        best=f"{R}/search/best.json",
        cost=f"{R}/search/cost.json",
    params:
        settings=settings("seed", "device", "features", "sparsity", "search"),
    log:
        f"{R}/logs/search.log",
    benchmark:
        f"{R}/benchmarks/search.tsv"
    threads: THREADS
    resources:
        **stage_resources("evaluate"),
    script:
        "../workflow_scripts/search.py"


rule extract_searched:
    """The best allocation under one budget, cut from the final supernet; no training."""
    input:
        supernet=rules.train_omni.output.model,
        best=rules.search.output.best,
    output:
        model=f"{R}/models/omni-searched/b{{budget}}/model.pt",
        cost=f"{R}/models/omni-searched/b{{budget}}/cost.json",
    params:
        settings=settings("sparsity"),
    wildcard_constraints:
        budget="|".join(re.escape(budget) for budget in SEARCH_BUDGETS),
    log:
        f"{R}/logs/extract_searched/b{{budget}}.log",
    benchmark:
        f"{R}/benchmarks/extract_searched/b{{budget}}.tsv"
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/extract_searched.py"


MODELS.extend(("omni-searched", f"b{budget}") for budget in SEARCH_BUDGETS)
COST_RECORDS.append(rules.search.output.cost)
COST_RECORDS.extend(f"{R}/models/omni-searched/b{budget}/cost.json" for budget in SEARCH_BUDGETS)
ALL_TARGETS += [rules.search.output.pareto, rules.search.output.history]
