"""Rule train_dense: the dense model both arms start from."""

from omni.jobs.training import JobSpec, run_training_job
from omni.logs import tee_stderr
from workflow_scripts.rule_io import train_paths, training_setup

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    setup = training_setup(smk)
    spec = JobSpec(job="train_dense", arm="dense", sparsity=None, steps=setup.training["steps"])
    run_training_job(setup, spec, train_paths(smk), smk.threads)
