"""Rule train_omni: the one supernet job of an omni arm."""

from omni.jobs.training import JobSpec, run_training_job
from omni.logs import tee_stderr
from omni.sparsity.supernet import planned_sampler
from workflow_scripts.rule_io import train_paths, training_setup

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    supernet = smk.params.supernet
    steps, _ = planned_sampler(supernet)
    setup = training_setup(smk, {"masks": smk.params.masks, "supernet": supernet})
    spec = JobSpec(job="train_omni", arm=smk.wildcards.arm, sparsity=None, steps=steps)
    run_training_job(setup, spec, train_paths(smk), smk.threads)
