"""Rule train_individual: dense -> gradual magnitude pruning to one sparsity (one of K jobs)."""
from omni.jobs.training import JobSpec, run_training_job
from omni.logs import tee_stderr
from omni.sparsity.gradual import GradualPruning
from workflow_scripts.rule_io import train_paths, training_setup

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    masks, individual = smk.params.masks, smk.params.individual
    target = float(smk.wildcards.sparsity)
    steps = individual["steps"]
    setup = training_setup(smk, {"masks": masks, "individual": individual})
    spec = JobSpec(job="train_individual", arm=smk.wildcards.arm, sparsity=target, steps=steps)
    run_training_job(setup, spec, train_paths(smk), smk.threads,
                     lambda model: GradualPruning(model, masks, target, steps, individual["prune_fraction"],
                                                  individual["mask_update_every"]))
