"""Rule train_dense: the dense model both arms start from."""

from omni.jobs.specs import dense_job
from omni.jobs.training import run_training_job
from omni.logs import tee_stderr
from workflow_scripts.rule_io import train_paths, training_setup

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    run_training_job(training_setup(smk), dense_job(smk.params.training), train_paths(smk), smk.threads)
