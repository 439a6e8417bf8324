# Stage 2: the dense model, trained once and shared by both arms (its cost is counted once).

TRAIN_INPUTS = dict(
    manifest=f"{R}/data/manifests/train.tsv",
    feature_stats=f"{R}/data/feature_stats.json",
    tokenizer=f"{R}/data/tokenizer.model",
)


def model_outputs(arm, tag):
    """A training job's declared outputs; its checkpoints live elsewhere (resume after a kill)."""
    folder = f"{R}/models/{arm}/{tag}"
    return dict(model=f"{folder}/model.pt", train_log=f"{folder}/train_log.csv", cost=f"{folder}/cost.json")


rule train_dense:
    input:
        **TRAIN_INPUTS,
    output:
        **model_outputs("dense", "dense"),
    params:
        checkpoints=f"{R}/checkpoints/dense/dense",
        settings=settings("seed", "device", "features", "model", "train"),
    log:
        f"{R}/logs/train_dense.log",
    benchmark:
        f"{R}/benchmarks/train_dense.tsv"
    threads: THREADS
    resources:
        **stage_resources("train"),
    script:
        "../workflow_scripts/train_dense.py"


MODELS.append(("dense", "dense"))
COST_RECORDS.append(rules.train_dense.output.cost)
TRAIN_LOGS.append(rules.train_dense.output.train_log)
