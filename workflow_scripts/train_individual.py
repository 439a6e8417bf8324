"""Rule train_individual: dense -> gradual magnitude pruning to one sparsity (one of K jobs)."""

from omni.jobs.specs import individual_job
from omni.jobs.training import run_training_job
from omni.logs import tee_stderr
from workflow_scripts.rule_io import train_paths, training_setup

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    sparsity = float(smk.wildcards.sparsity)
    job = individual_job(smk.wildcards.arm, sparsity, smk.params.individual, smk.params.masks)
    run_training_job(training_setup(smk), job, train_paths(smk), smk.threads)
