# Stage: speed on a device. Each evaluated model exported to the runtimes a device ships (ONNX Runtime,
# ExecuTorch; fp32 and int8), then streamed as a device would decode it on every path: eager PyTorch
# (dense, sparse kernels, int8) and each runtime; then one table and one figure. A device_metrics job
# takes all the job's cores (config `threads`) so nothing else runs beside it while it times; its
# 1-thread figures are the on-device case.

localrules: speed_table

RUNTIMES = job_params.runtimes(config)


rule export_runtimes:
    """The model's streaming programs for each runtime, fp32 and int8 (omni.deploy)."""
    input:
        export=f"{STUDY.model_dir('{arm}', '{seed}', '{tag}')}/export_fp32.pt",
        feature_stats=DATA["feature_stats"],
        tokenizer=DATA["tokenizer"],
    output:
        bundle=directory(STUDY.deploy_dir("{arm}", "{seed}", "{tag}")),
    params:
        runtimes=RUNTIMES,
        logmel=job_params.logmel(config),
    log:
        f"{R}/logs/export_runtimes/{{arm}}/{seed_dir('{seed}')}/{{tag}}.log",
    benchmark:
        STUDY.benchmark(job_names.EXPORT_RUNTIMES, "{arm}", seed_dir("{seed}"), "{tag}")
    threads: 1
    resources:
        **stage_resources("data"),   # CPU only: exporting needs no GPU
    script:
        "../workflow_scripts/export_runtimes.py"


rule device_metrics:
    input:
        export=f"{STUDY.model_dir('{arm}', '{seed}', '{tag}')}/export_fp16.pt",
        manifest=STUDY.eval_manifest(config["speed"]["split"]),
        feature_stats=DATA["feature_stats"],
        tokenizer=DATA["tokenizer"],
        **({"bundle": STUDY.deploy_dir("{arm}", "{seed}", "{tag}")} if RUNTIMES else {}),
    output:
        record=STUDY.device_metrics("{arm}", "{seed}", "{tag}"),
    params:
        speed=job_params.speed(config),
        logmel=job_params.logmel(config),
    log:
        f"{R}/logs/device_metrics/{{arm}}/{seed_dir('{seed}')}/{{tag}}.log",
    benchmark:
        STUDY.benchmark(job_names.DEVICE_METRICS, "{arm}", seed_dir("{seed}"), "{tag}")
    threads: THREADS
    resources:
        **stage_resources("data"),   # CPU only, as the data stage: a device has no GPU
    script:
        "../workflow_scripts/device_metrics.py"


rule speed_table:
    """Per model and path: real-time factor, latency per chunk, peak memory, export MB; WER vs speed-up."""
    input:
        records=STUDY.device_metrics_files(),
        summaries=STUDY.eval_summaries(),
    output:
        csv=reported(STUDY.table("speed.csv"), "speed.rst", "Tables", "Speed on a device"),
        md=reported(STUDY.table("speed.md"), "speed.rst", "Tables", "Speed on a device"),
        figure=reported(STUDY.figure("speed.png"), "speed_figure.rst", "Figures"),
    params:
        decode=config["report"]["table_decode"],
        split=config["speed"]["split"],
    log:
        f"{R}/logs/report/speed_table.log",
    benchmark:
        STUDY.benchmark("speed_table")
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/speed_tables.py"
