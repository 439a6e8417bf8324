# Stage 3b: the omni arm. ONE supernet job from dense per training seed: every step trains sampled sparsity levels
# of the shared weights (masks from the current weights), gradients accumulated, one update.


rule train_omni:
    input:
        **TRAIN_INPUTS,
        init_model=DENSE_MODEL,
    output:
        **STUDY.trained_files(SUPERNET[0], "{seed}", SUPERNET[1]),
    params:
        checkpoints=STUDY.checkpoints(SUPERNET[0], "{seed}", SUPERNET[1]),
        training=seeded(lambda seed: job_params.training(config, "omni", seed)),
        logmel=job_params.logmel(config),
        augmentation=job_params.augmentation(config),
        masks=job_params.masks(config),
        supernet=job_params.supernet(config),
    log:
        f"{R}/logs/train_omni/{seed_dir('{seed}')}.log",
    benchmark:
        STUDY.benchmark("train_omni", seed_dir("{seed}"))
    threads: THREADS
    resources:
        **stage_resources("train"),
    script:
        "../workflow_scripts/train_omni.py"
