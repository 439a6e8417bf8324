# Omni-sparsity study: one weight-shared sparse supernet vs individually pruned models.
# Entry point: validates the configuration, then includes one rule file per stage.
import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# workflow_scripts import the `omni` library from this checkout.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))
sys.path.insert(0, workflow.basedir)
from omni.config import read_yaml, validate_config
from omni.config_checks import check_study
from omni.run_end import unfinished_run_message
from omni.study_lock import lock_study

# The embedded default, found next to this file so `--directory` runs elsewhere work too;
# `--configfile other.yaml` layers on top of it. Read here first because Snakemake's reader names neither
# the file nor the line of a YAML error (a --configfile it reads before this file runs: docs/decisions.md).
DEFAULT_CONFIG = os.path.join(workflow.basedir, "config.yaml")
read_yaml(DEFAULT_CONFIG)
configfile: DEFAULT_CONFIG

validate_config(config)  # schemas/config.schema.yaml; every error names its key
check_study(config)  # checks across keys the schema cannot express, before any job starts


onstart:
    # One run per results folder (omni/study_lock.py). `onstart` runs in a real run's main process once the
    # DAG is built and before its first job; never for a dry run, --unlock, --report or "Nothing to be done",
    # nor in the jobs Snakemake spawns (local `run:` jobs, SLURM jobs: --no-hooks). The lock lasts until the
    # process exits.
    lock_study(config["results_dir"])


onerror:
    # Snakemake's own last line says a job did not complete even when the run was only stopped on request.
    print(unfinished_run_message(log), file=sys.stderr)


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/dense.smk"
include: "rules/control.smk"
include: "rules/individual.smk"
include: "rules/omni.smk"
include: "rules/extract.smk"
include: "rules/search.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/speed.smk"


rule all:
    input:
        STUDY.final_targets(),
    default_target: True
