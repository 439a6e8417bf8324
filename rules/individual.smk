# Stage 3a: the individual arm. One job per target sparsity: start from dense, prune gradually
# on the cubic schedule (Zhu & Gupta 2017), keep training to M steps. K jobs, K costs.


rule train_individual:
    input:
        **TRAIN_INPUTS,
        init_model=rules.train_dense.output.model,
    output:
        **model_outputs("individual", "s{sparsity}"),
    params:
        checkpoints=f"{R}/checkpoints/individual/s{{sparsity}}",
        settings=settings("seed", "device", "features", "model", "train", "sparsity", "individual"),
    log:
        f"{R}/logs/train_individual/s{{sparsity}}.log",
    benchmark:
        f"{R}/benchmarks/train_individual/s{{sparsity}}.tsv"
    threads: THREADS
    resources:
        **stage_resources("train"),
    script:
        "../workflow_scripts/train_individual.py"


MODELS.extend(("individual", f"s{level}") for level in LEVELS)
COST_RECORDS.extend(f"{R}/models/individual/s{level}/cost.json" for level in LEVELS)
TRAIN_LOGS.extend(f"{R}/models/individual/s{level}/train_log.csv" for level in LEVELS)
