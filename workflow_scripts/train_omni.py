"""Rule train_omni: the one supernet job of an omni arm."""

from omni.jobs.specs import supernet_job
from omni.jobs.training import run_training_job
from omni.logs import tee_stderr
from workflow_scripts.rule_io import train_paths, training_setup

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    job = supernet_job(smk.wildcards.arm, smk.params.supernet, smk.params.masks)
    run_training_job(training_setup(smk), job, train_paths(smk), smk.threads)
