# Stage 2: the dense model, trained once (config `seed`) and shared by both arms and every
# training seed of theirs (its cost is counted once); and each replicate's (config `dense_replicates`).


rule train_dense:
    input:
        **TRAIN_INPUTS,
    output:
        **STUDY.trained_files(*STUDY.dense_model("{seed}")),
    params:
        checkpoints=STUDY.checkpoints(*STUDY.dense_model("{seed}")),
        training=seeded(lambda seed: job_params.training(config, "dense", seed)),
        logmel=job_params.logmel(config),
        augmentation=job_params.augmentation(config),
        model=job_params.model(config),
    log:
        f"{R}/logs/train_dense/{seed_dir('{seed}')}.log",
    benchmark:
        STUDY.benchmark(job_names.TRAIN_DENSE, seed_dir("{seed}"))
    threads: THREADS
    resources:
        **stage_resources("train"),
    script:
        "../workflow_scripts/train_dense.py"
