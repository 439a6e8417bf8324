# Stage 5: layer-wise sparsity search on each seed's supernet of the searched omni arms (search.arms; fine-tune free), then the extraction of
# the best per-layer mix under each size budget. A budget is a level: the size (kept parameters)
# of the uniform model at that level, from search.budgets or else sparsity.levels.

localrules: extract_searched


rule search:
    """Evolution over per-layer sparsity under every budget, scored on the search's dev speakers."""
    input:
        supernet=rules.train_omni.output.model,
        manifest=rules.split_dev.output.search,
        feature_stats=DATA["feature_stats"],
        tokenizer=DATA["tokenizer"],
    output:
        pareto=STUDY.search_file("{arm}", "{seed}", "pareto.csv"),
        history=STUDY.search_file("{arm}", "{seed}", "history.csv"),
        best=STUDY.search_file("{arm}", "{seed}", "best.json"),
        cost=STUDY.search_file("{arm}", "{seed}", "cost.json"),
    wildcard_constraints:
        arm=one_of(STUDY.searched_arms),
    params:
        search=seeded(lambda seed: job_params.search(config, seed)),
        masks=of_arm(lambda arm: job_params.masks(config, arm)),
        logmel=job_params.logmel(config),
    log:
        f"{R}/logs/search/{{arm}}/{seed_dir('{seed}')}.log",
    benchmark:
        STUDY.benchmark(job_names.SEARCH, "{arm}", seed_dir("{seed}"))
    threads: DECODE_THREADS
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
        model=f"{STUDY.model_dir(STUDY.searched('{arm}'), '{seed}', 'b{budget}')}/model.pt",
        cost=f"{STUDY.model_dir(STUDY.searched('{arm}'), '{seed}', 'b{budget}')}/cost.json",
    wildcard_constraints:
        arm=one_of(STUDY.searched_arms),
        budget=one_of(STUDY.budgets),
    log:
        f"{R}/logs/extract_searched/{{arm}}/{seed_dir('{seed}')}/b{{budget}}.log",
    benchmark:
        STUDY.benchmark(job_names.EXTRACT_SEARCHED, "{arm}", seed_dir("{seed}"), "b{budget}")
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/extract_searched.py"
