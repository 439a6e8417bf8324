"""Rule train_individual: dense -> gradual magnitude pruning to one sparsity (one of K jobs)."""
from omni.logs import tee_stderr
from omni.sparsity.gradual import GradualPruning
from omni.jobs.training import JobSpec, run_training_job
from workflow_scripts.rule_io import train_paths

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    config = smk.config
    target = float(smk.wildcards.sparsity)
    steps = config["individual"]["steps"]
    spec = JobSpec(job="train_individual", arm="individual", sparsity=target, steps=steps,
                   lr=config["train"]["finetune_lr"], seed=config["seed"])
    run_training_job(config, spec, train_paths(smk), smk.threads,
                     lambda model: GradualPruning(model, config["sparsity"], target, steps,
                                                  config["individual"]["prune_fraction"],
                                                  config["individual"]["mask_update_every"]))
