# Stage 3a: the individual arms (`individual` and its variants). One job per arm, target sparsity and training
# seed: start from dense, prune gradually on the cubic schedule (Zhu & Gupta 2017), keep training to M steps.
# K jobs, K costs, per seed. A job's params name its own level (the wildcard), never the list: adding a level
# adds a job.


rule train_individual:
    input:
        **TRAIN_INPUTS,
        init_model=of_arm(STUDY.dense_model_file),
    output:
        **STUDY.trained_files("{arm}", "{seed}", "s{sparsity}"),
    wildcard_constraints:
        arm=one_of(STUDY.individual_arms),
    params:
        checkpoints=STUDY.checkpoints("{arm}", "{seed}", "s{sparsity}"),
        training=of_arm_and_seed(lambda arm, seed: job_params.arm_training(config, arm, seed)),
        logmel=job_params.logmel(config),
        augmentation=job_params.augmentation(config),
        masks=of_arm(lambda arm: job_params.masks(config, arm)),
        individual=of_arm(lambda arm: job_params.individual(config, arm)),
    log:
        f"{R}/logs/train_individual/{{arm}}/{seed_dir('{seed}')}/s{{sparsity}}.log",
    benchmark:
        STUDY.benchmark(job_names.TRAIN_INDIVIDUAL, "{arm}", seed_dir("{seed}"), "s{sparsity}")
    threads: THREADS
    resources:
        **stage_resources("train"),
    script:
        "../workflow_scripts/train_individual.py"
