# Stage 2: the dense model, trained once and shared by both arms (its cost is counted once).


rule train_dense:
    input:
        **TRAIN_INPUTS,
    output:
        **STUDY.trained_files("dense", "dense"),
    params:
        checkpoints=STUDY.checkpoints("dense", "dense"),
        training=job_params.training(config, "dense"),
        logmel=job_params.logmel(config),
        augmentation=job_params.augmentation(config),
        model=job_params.model(config),
    log:
        f"{R}/logs/train_dense.log",
    benchmark:
        STUDY.benchmark("train_dense")
    threads: THREADS
    resources:
        **stage_resources("train"),
    script:
        "../workflow_scripts/train_dense.py"
