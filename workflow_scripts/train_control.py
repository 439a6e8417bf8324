"""Rule train_control: the dense model trained on like a pruning job, without masks."""

from omni.jobs.specs import control_job
from omni.jobs.training import run_training_job
from omni.logs import tee_stderr
from workflow_scripts.rule_io import train_paths, training_setup

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    run_training_job(training_setup(smk), control_job(smk.params.control), train_paths(smk), smk.threads)
