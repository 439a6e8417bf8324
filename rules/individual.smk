# Stage 3a: the individual arm. One job per target sparsity and training seed: start from dense, prune
# gradually on the cubic schedule (Zhu & Gupta 2017), keep training to M steps. K jobs, K costs, per seed.
# A job's params name its own level (the wildcard), never the list: adding a level adds a job.


rule train_individual:
    input:
        **TRAIN_INPUTS,
        init_model=DENSE_MODEL,
    output:
        **STUDY.trained_files("individual", "{seed}", "s{sparsity}"),
    params:
        checkpoints=STUDY.checkpoints("individual", "{seed}", "s{sparsity}"),
        training=seeded(lambda seed: job_params.training(config, "individual", seed)),
        logmel=job_params.logmel(config),
        augmentation=job_params.augmentation(config),
        masks=job_params.masks(config),
        individual=job_params.individual(config),
    log:
        f"{R}/logs/train_individual/{seed_dir('{seed}')}/s{{sparsity}}.log",
    benchmark:
        STUDY.benchmark("train_individual", seed_dir("{seed}"), "s{sparsity}")
    threads: THREADS
    resources:
        **stage_resources("train"),
    script:
        "../workflow_scripts/train_individual.py"
