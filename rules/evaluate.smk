# Stage: evaluation of every model (dense; per training seed control, individual, omni, omni-searched) on every split,
# in every decode mode of config evaluate.decodes. One job per (model, split).


rule evaluate:
    input:
        model=f"{STUDY.model_dir('{arm}', '{seed}', '{tag}')}/model.pt",
        export_info=f"{STUDY.model_dir('{arm}', '{seed}', '{tag}')}/export.json",
        manifest=lambda wildcards: STUDY.eval_manifest(wildcards.split),
        feature_stats=DATA["feature_stats"],
        tokenizer=DATA["tokenizer"],
    output:
        summary=f"{STUDY.eval_dir('{arm}', '{seed}', '{tag}', '{split}')}/summary.json",
        utterances=[f"{STUDY.eval_dir('{arm}', '{seed}', '{tag}', '{split}')}/{decode}.tsv"
                    for decode in config["evaluate"]["decodes"]],
        cost=f"{STUDY.eval_dir('{arm}', '{seed}', '{tag}', '{split}')}/cost.json",
    params:
        evaluation=job_params.evaluation(config),
        logmel=job_params.logmel(config),
    log:
        f"{R}/logs/evaluate/{{arm}}/{seed_dir('{seed}')}/{{tag}}/{{split}}.log",
    benchmark:
        STUDY.benchmark(job_names.EVALUATE, "{arm}", seed_dir("{seed}"), "{tag}", "{split}")
    threads: DECODE_THREADS
    resources:
        **stage_resources("evaluate"),
    script:
        "../workflow_scripts/evaluate.py"
