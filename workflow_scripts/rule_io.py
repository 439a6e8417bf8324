"""Glue shared by the training rules: a Snakemake job's declared files and params, as omni arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omni.jobs.specs import training_spec
from omni.jobs.training import TrainingSetup, TrainPaths


def train_paths(smk: Any) -> TrainPaths:
    """Rules that train share input/output names: manifest, feature_stats, tokenizer -> model, log, cost."""
    init = getattr(smk.input, "init_model", None)
    return TrainPaths(
        manifest=Path(smk.input.manifest),
        feature_stats=Path(smk.input.feature_stats),
        tokenizer=Path(smk.input.tokenizer),
        model_out=Path(smk.output.model),
        log_out=Path(smk.output.train_log),
        cost_out=Path(smk.output.cost),
        checkpoint_dir=Path(smk.params.checkpoints),
        init_model=Path(init) if init else None,
    )


def training_setup(smk: Any) -> TrainingSetup:
    """The training params every training rule declares (the arm's own sections make its job's spec)."""
    return TrainingSetup(
        training=training_spec(smk.params.training),
        logmel=smk.params.logmel,
        augmentation=smk.params.augmentation,
        model=getattr(smk.params, "model", None),
    )
