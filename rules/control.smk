# Stage 2b: the control arm, "dense-continued". The dense model trained as many steps as one
# pruning job, on the same batches and schedule, with no masks: what the pruning arms gain from
# more training alone, so that WER - control WER is the damage pruning does. One job per training seed,
# on that seed's batches, like the pruning jobs it is compared with.


rule train_control:
    input:
        **TRAIN_INPUTS,
        init_model=DENSE_MODEL,
    output:
        **STUDY.trained_files(CONTROL[0], "{seed}", CONTROL[1]),
    params:
        checkpoints=STUDY.checkpoints(CONTROL[0], "{seed}", CONTROL[1]),
        training=seeded(lambda seed: job_params.training(config, "control", seed)),
        logmel=job_params.logmel(config),
        augmentation=job_params.augmentation(config),
        control=job_params.control(config),
    log:
        f"{R}/logs/train_control/{seed_dir('{seed}')}.log",
    benchmark:
        STUDY.benchmark(job_names.TRAIN_CONTROL, seed_dir("{seed}"))
    threads: THREADS
    resources:
        **stage_resources("train"),
    script:
        "../workflow_scripts/train_control.py"
