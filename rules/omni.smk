# Stage 3b: the omni arms (`omni` and its variants). ONE supernet job from dense per arm and training seed:
# every step trains sampled sparsity levels of the shared weights (masks from the current weights), gradients
# accumulated, one update.


rule train_omni:
    input:
        **TRAIN_INPUTS,
        init_model=of_arm(STUDY.dense_model_file),
    output:
        **STUDY.trained_files("{arm}", "{seed}", SUPERNET_TAG),
    wildcard_constraints:
        arm=one_of(STUDY.omni_arms),
    params:
        checkpoints=STUDY.checkpoints("{arm}", "{seed}", SUPERNET_TAG),
        training=of_arm_and_seed(lambda arm, seed: job_params.arm_training(config, arm, seed)),
        logmel=job_params.logmel(config),
        augmentation=job_params.augmentation(config),
        masks=of_arm(lambda arm: job_params.masks(config, arm)),
        supernet=of_arm(lambda arm: job_params.supernet(config, arm)),
    log:
        f"{R}/logs/train_omni/{{arm}}/{seed_dir('{seed}')}.log",
    benchmark:
        STUDY.benchmark(job_names.TRAIN_OMNI, "{arm}", seed_dir("{seed}"))
    threads: THREADS
    resources:
        **stage_resources("train"),
    script:
        "../workflow_scripts/train_omni.py"
