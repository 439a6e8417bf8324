"""Rule train_omni: the one supernet job of the omni arm."""
from omni.logs import tee_stderr
from omni.sparsity.supernet import SupernetGradients, sampler_from_config, supernet_steps
from omni.jobs.training import JobSpec, run_training_job
from workflow_scripts.rule_io import train_paths

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    config = smk.config
    omni_cfg = config["omni"]
    planned = sampler_from_config(omni_cfg, config["sparsity"]["levels"], omni_cfg["steps"])
    steps = supernet_steps(omni_cfg, planned)
    sampler = sampler_from_config(omni_cfg, config["sparsity"]["levels"], steps)
    spec = JobSpec(job="train_omni", arm="omni", sparsity=None, steps=steps,
                   lr=config["train"]["finetune_lr"], seed=config["seed"])
    run_training_job(config, spec, train_paths(smk), smk.threads,
                     lambda model: SupernetGradients(model, config["sparsity"], sampler,
                                                     omni_cfg["mask_update_every"], config["seed"]))
