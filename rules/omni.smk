# Stage 3b: the omni arm. ONE supernet job from dense: every step trains sampled sparsity levels
# of the shared weights (masks from the current weights), gradients accumulated, one update.


rule train_omni:
    input:
        **TRAIN_INPUTS,
        init_model=rules.train_dense.output.model,
    output:
        **model_outputs("omni", "supernet"),
    params:
        checkpoints=f"{R}/checkpoints/omni/supernet",
        settings=settings("seed", "device", "features", "model", "train", "sparsity", "omni"),
    log:
        f"{R}/logs/train_omni.log",
    benchmark:
        f"{R}/benchmarks/train_omni.tsv"
    threads: THREADS
    resources:
        **stage_resources("train"),
    script:
        "../workflow_scripts/train_omni.py"


COST_RECORDS.append(rules.train_omni.output.cost)
TRAIN_LOGS.append(rules.train_omni.output.train_log)
