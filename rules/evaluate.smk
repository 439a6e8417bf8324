# Stage: evaluation of every model (dense, individual, omni, omni-searched) on every split,
# in every decode mode of config evaluate.decodes. One job per (model, split).

DECODES = config["evaluate"]["decodes"]


rule evaluate:
    input:
        model=f"{R}/models/{{arm}}/{{tag}}/model.pt",
        export_info=f"{R}/models/{{arm}}/{{tag}}/export.json",
        manifest=f"{R}/data/manifests/{{split}}.tsv",
        feature_stats=f"{R}/data/feature_stats.json",
        tokenizer=f"{R}/data/tokenizer.model",
    output:
        summary=f"{R}/eval/{{arm}}/{{tag}}/{{split}}/summary.json",
        utterances=expand(f"{R}/eval/{{arm}}/{{tag}}/{{split}}/{{decode}}.tsv", decode=DECODES, allow_missing=True),
        cost=f"{R}/eval/{{arm}}/{{tag}}/{{split}}/cost.json",
    params:
        settings=settings("device", "evaluate.decodes", "evaluate.beam_width", "evaluate.batch_size"),
    log:
        f"{R}/logs/evaluate/{{arm}}/{{tag}}/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/evaluate/{{arm}}/{{tag}}/{{split}}.tsv"
    threads: THREADS
    resources:
        **stage_resources("evaluate"),
    script:
        "../workflow_scripts/evaluate.py"


EVAL_SUMMARIES = [f"{R}/eval/{arm}/{tag}/{split}/summary.json" for arm, tag in MODELS for split in EVAL_SPLITS]
COST_RECORDS += [f"{R}/eval/{arm}/{tag}/{split}/cost.json" for arm, tag in MODELS for split in EVAL_SPLITS]
ALL_TARGETS += EVAL_SUMMARIES
