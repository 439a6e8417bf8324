# What every stage shares: the study's layout (omni.study: models, paths, final targets, all
# functions of the config) and the per-job config sections (omni.job_params) that rules declare
# as params, so a job reruns exactly when a value it reads changes.
from omni import job_names, job_params
from omni.arms import TAG_PATTERN
import re

from omni.study import CONTROL, SPLITS, SUPERNET_TAG, Study, seed_dir

STUDY = Study.from_config(config)
R = STUDY.results
THREADS = config["threads"]
DECODE_THREADS = config["evaluate"]["threads"]   # evaluation and search jobs: decoding

wildcard_constraints:
    split="|".join(SPLITS),
    seed=r"[0-9]+",
    sparsity=r"0\.[0-9]+",
    arm="|".join(re.escape(arm) for arm in STUDY.arms()),
    tag=TAG_PATTERN,


def stage_resources(stage):
    """Snakemake resources of a stage, from config['resources'] (the SLURM executor reads these). A GPU
    stage asks for its GPUs and leaves `tasks` unset: the job is one task that runs torchrun itself."""
    spec = config["resources"][stage]
    resources = {"mem_mb": spec["mem_mb"], "runtime": spec["runtime_min"]}
    if spec["gpus"]:
        resources["gpu"] = spec["gpus"]
    if spec["partition"]:
        resources["slurm_partition"] = spec["partition"]
    return resources


# The data stage's products every training and evaluation job reads.
DATA = dict(
    manifest=STUDY.manifest("{split}"),
    train_manifest=STUDY.manifest("train"),
    feature_stats=STUDY.feature_stats(),
    tokenizer=STUDY.tokenizer(),
)
TRAIN_INPUTS = dict(manifest=DATA["train_manifest"], feature_stats=DATA["feature_stats"], tokenizer=DATA["tokenizer"])
# The model every pruning arm and the control start from.
DENSE_MODEL = STUDY.trained_files(*STUDY.dense())["model"]


def seeded(section):
    """Params of a job run once per training seed: `section(seed)`, the seed read from the `{seed}` wildcard."""
    return lambda wildcards: section(int(wildcards.seed))


def of_arm_and_seed(section):
    """Params of a job of one pruning arm and training seed: `section(arm, seed)`, both from the wildcards."""
    return lambda wildcards: section(wildcards.arm, int(wildcards.seed))


def of_arm(section):
    """Params (or an input) of a job of one pruning arm: `section(arm)`, the arm read from the `{arm}` wildcard (a variant's
    section holds its overrides, so editing one variant reruns only that arm)."""
    return lambda wildcards: section(wildcards.arm)


def one_of(names):
    """A wildcard constraint that matches exactly these names."""
    return "|".join(re.escape(name) for name in names)
