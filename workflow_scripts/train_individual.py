"""Rule train_individual: dense -> gradual magnitude pruning to one sparsity (one of K jobs)."""

from omni.jobs.training import JobSpec, run_training_job
from omni.logs import tee_stderr
from workflow_scripts.rule_io import train_paths, training_setup

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    individual = smk.params.individual
    setup = training_setup(smk, {"masks": smk.params.masks, "individual": individual})
    spec = JobSpec(
        job="train_individual", arm=smk.wildcards.arm, sparsity=float(smk.wildcards.sparsity), steps=individual["steps"]
    )
    run_training_job(setup, spec, train_paths(smk), smk.threads)
