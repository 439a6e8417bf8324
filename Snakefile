# Omni-sparsity study: one weight-shared sparse supernet vs individually pruned models.
# Entry point: validates the configuration, then includes one rule file per stage.
import os
import sys

from snakemake.utils import min_version, validate

min_version("9.0")

# The embedded default, found next to this file so `--directory` runs elsewhere work too;
# `--configfile other.yaml` layers on top of it.
configfile: os.path.join(workflow.basedir, "config.yaml")

validate(config, schema="schemas/config.schema.yaml")

# workflow_scripts import the `omni` library from this checkout.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))
sys.path.insert(0, workflow.basedir)
from omni.study import check_study

check_study(config)  # checks across keys the schema cannot express, before any job starts


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
