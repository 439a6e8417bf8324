# What every stage shares: the study's layout (omni.study: models, paths, final targets, all
# functions of the config) and the per-job config sections (omni.job_params) that rules declare
# as params, so a job reruns exactly when a value it reads changes.
from omni import job_params
from omni.study import CONTROL, SPLITS, SUPERNET, Study

STUDY = Study.from_config(config)
R = STUDY.results
THREADS = config["threads"]

wildcard_constraints:
    split="|".join(SPLITS),
    sparsity=r"0\.[0-9]+",
    arm="dense|control|individual|omni|omni-searched",
    tag=r"dense|continued|s0\.[0-9]+|b0\.[0-9]+",


def stage_resources(stage):
    """Snakemake resources of a stage, from config['resources'] (SLURM reads these)."""
    spec = config["resources"][stage]
    resources = {"mem_mb": spec["mem_mb"], "runtime": spec["runtime_min"]}
    if spec["gpus"]:
        resources["gpu"] = spec["gpus"]
    return resources


# The data stage's products every training and evaluation job reads.
DATA = dict(
    manifest=STUDY.manifest("{split}"),
    train_manifest=STUDY.manifest("train"),
    feature_stats=STUDY.feature_stats(),
    tokenizer=STUDY.tokenizer(),
)
TRAIN_INPUTS = dict(manifest=DATA["train_manifest"], feature_stats=DATA["feature_stats"], tokenizer=DATA["tokenizer"])
