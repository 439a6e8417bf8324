"""Rule train_dense: the dense model both arms start from."""
from omni.logs import tee_stderr
from omni.asr.trainer import DenseGradients
from omni.jobs.training import JobSpec, run_training_job
from workflow_scripts.rule_io import train_paths

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    config = smk.config
    spec = JobSpec(job="train_dense", arm="dense", sparsity=None, steps=config["train"]["dense_steps"],
                   lr=config["train"]["lr"], seed=config["seed"], clean_steps=config["train"]["dense_clean_steps"])
    run_training_job(config, spec, train_paths(smk), smk.threads, DenseGradients)
