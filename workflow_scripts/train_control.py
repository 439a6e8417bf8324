"""Rule train_control: the dense model trained on like a pruning job, without masks."""

from omni.jobs.training import JobSpec, run_training_job
from omni.logs import tee_stderr
from workflow_scripts.rule_io import train_paths, training_setup

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    setup = training_setup(smk, {"control": smk.params.control})
    spec = JobSpec(job="train_control", arm="control", sparsity=None, steps=smk.params.control["steps"])
    run_training_job(setup, spec, train_paths(smk), smk.threads)
