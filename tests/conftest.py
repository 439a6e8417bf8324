"""Shared fixtures: the smoke study's configuration and its prepared data (built once per run)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from snakemake.utils import update_config

from omni import job_params
from omni.atomic import write_json
from omni.config import load_config, read_yaml, validate_config
from omni.data.corpus import prepare_corpus, write_corpus_record
from omni.data.features import compute_feature_stats
from omni.data.manifest import build_manifest, write_manifest
from omni.data.tokenizer import train_tokenizer
from omni.jobs.specs import DenseJob, training_spec
from omni.jobs.training import TrainingSetup, TrainPaths, run_training_job

pytest_plugins = ["tests.faults"]  # the fault suite's `fault` marker, fixture and report

REPO = Path(__file__).resolve().parent.parent
# The shared 20-utterance LibriSpeech test-other sample, beside the repository (never a machine path).
LIBRISPEECH_SAMPLE = (REPO.parent / "shared" / "data" / "librispeech-sample").resolve()
SPLITS = ["train", "dev", "test-clean", "test-other"]


def layered_config(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """config.yaml with each layer merged over it by Snakemake's own merge (what `--configfile` does), validated."""
    config = read_yaml(REPO / "config.yaml")
    for layer in layers:
        update_config(config, copy.deepcopy(dict(layer)))
    return validate_config(config)


def smoke_config(results_dir: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """config.yaml layered with configs/smoke.yaml (as `--configfile` does), results in `results_dir`."""
    smoke = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    return layered_config(smoke, {"results_dir": str(results_dir)}, overrides or {})


def manifest_section(**overrides: Any) -> dict[str, Any]:
    """The manifest rule's section (omni.job_params.manifest) of config.yaml, with `overrides`."""
    return {**job_params.manifest(load_config(REPO / "config.yaml")), **overrides}


@dataclass
class PreparedData:
    config: dict[str, Any]
    root: Path
    manifests: dict[str, Path]
    feature_stats: Path
    tokenizer: Path


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> PreparedData:
    """The smoke corpus with manifests, feature statistics and tokenizer, as the data stage makes them."""
    root = tmp_path_factory.mktemp("smoke")
    # One training process (as configs/smoke.yaml): some unit tests swap a job's gradient strategy
    # (omni.jobs.training.strategy_for), which holds in one process only; the tests of data-parallel
    # training set train.cpu_processes themselves.
    config = smoke_config(root)
    assert config["train"]["cpu_processes"] == 1
    info = prepare_corpus(job_params.corpus(config), root / "corpus" / "synth", workers=2)
    record = root / "corpus" / "synth.json"
    write_corpus_record(record, info)
    manifests = {}
    for split in SPLITS:
        kept, _ = build_manifest(info, split, job_params.manifest(config))
        manifests[split] = root / "data" / f"{split}.tsv"
        write_manifest(manifests[split], kept, record)
    train = build_manifest(info, "train", job_params.manifest(config))[0]
    stats = root / "data" / "feature_stats.json"
    write_json(stats, compute_feature_stats(train, job_params.logmel(config), 1))
    tokenizer = root / "data" / "tokenizer.model"
    train_tokenizer(
        train["transcript"].tolist(),
        config["tokenizer"]["vocab_size"],
        config["tokenizer"]["model_type"],
        tokenizer,
        config["seed"],
    )
    return PreparedData(config, root, manifests, stats, tokenizer)


def training_setup(config: dict[str, Any], arm: str) -> TrainingSetup:
    """What the training rule of `arm` declares as params (rules/*.smk), built from a config (the arm's
    own sections make its job: omni.jobs.specs)."""
    seed = config["seed"] if arm == "dense" else config["seeds"][0]
    return TrainingSetup(
        training=training_spec(job_params.training(config, arm, seed)),
        logmel=job_params.logmel(config),
        augmentation=job_params.augmentation(config),
        model=job_params.model(config) if arm == "dense" else None,
    )


def paths(prepared: PreparedData, folder: Path, init: Path | None = None) -> TrainPaths:
    """A training job's files under `folder`, on the prepared training split."""
    return TrainPaths(
        manifest=prepared.manifests["train"],
        feature_stats=prepared.feature_stats,
        tokenizer=prepared.tokenizer,
        model_out=folder / "model.pt",
        log_out=folder / "train_log.csv",
        cost_out=folder / "cost.json",
        checkpoint_dir=folder / "checkpoints",
        init_model=init,
    )


@pytest.fixture(scope="session")
def dense_model(prepared: PreparedData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dense model of 3 steps: where the pruning arms' tests start."""
    folder = tmp_path_factory.mktemp("dense")
    run_training_job(training_setup(prepared.config, "dense"), DenseJob("dense", 3), paths(prepared, folder), 1)
    return folder / "model.pt"
