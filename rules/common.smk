# Paths and helpers shared by every stage. All outputs live under config["results_dir"].
import json

R = config["results_dir"]
SPLITS = ["train", "dev", "test-clean", "test-other"]
EVAL_SPLITS = config["evaluate"]["splits"]
LEVELS = [f"{s:g}" for s in config["sparsity"]["levels"]]
THREADS = config["threads"]

wildcard_constraints:
    split="train|dev|test-clean|test-other",
    sparsity=r"0\.[0-9]+",
    arm="dense|individual|omni|omni-searched",
    tag=r"dense|s0\.[0-9]+|b0\.[0-9]+",


def settings(*keys):
    """The config values a rule's outputs depend on ('section' or 'section.key'), declared as a
    param: Snakemake's params rerun trigger then reruns the rule, and what depends on it, when one
    of them changes (it does not track the config file otherwise)."""
    chosen = {}
    for key in keys:
        value = config
        for part in key.split("."):
            value = value[part]
        chosen[key] = value
    # Canonical text: Snakemake compares params by their text, and key order is not a change.
    return json.dumps(chosen, sort_keys=True)


def stage_resources(stage):
    """Snakemake resources of a stage, from config['resources'] (SLURM reads these)."""
    spec = config["resources"][stage]
    resources = {"mem_mb": spec["mem_mb"], "runtime": spec["runtime_min"]}
    if spec["gpus"]:
        resources["gpu"] = spec["gpus"]
    return resources


# Every rule file appends the final targets of its stage here; `rule all` asks for all of them.
ALL_TARGETS = []
# (arm, tag) of every model the study evaluates; stage files append theirs.
MODELS = []
# Every job's cost record and every training log; the report stage reads them all.
COST_RECORDS = []
TRAIN_LOGS = []
