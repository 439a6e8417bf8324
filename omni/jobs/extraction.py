"""Extraction jobs: a sub-network cut from the final supernet, with no training, saved as a
model artefact with its cost record. A uniform level (the omni arm) or a searched per-layer
allocation (an omni arm's searched arm, e.g. omni-searched)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from omni.arms import budget_tag
from omni.asr.model import save_model
from omni.atomic import load_torch
from omni.costs import CostMeter
from omni.job_names import EXTRACT_OMNI, EXTRACT_SEARCHED
from omni.runtime import set_threads
from omni.sparsity.extract import extract_subnetwork
from omni.sparsity.masks import sparsity_of


def extract_uniform(
    supernet_path: Path, sparsity: float, model_out: Path, cost_out: Path, threads: int, arm: str
) -> None:
    """The model of omni arm `arm` at one level, cut with the rankings the supernet last trained."""
    set_threads(threads)
    meter = CostMeter(EXTRACT_OMNI, arm, sparsity, torch.device("cpu"), threads)
    supernet = load_torch(supernet_path)
    state, masks = extract_subnetwork(supernet, sparsity)
    save_model(
        model_out,
        state,
        supernet["model_config"],
        masks,
        meta={"arm": arm, "sparsity": sparsity, "source": str(supernet_path)},
    )
    meter.finish(cost_out)


def extract_searched(
    supernet_path: Path, best_path: Path, level: float, model_out: Path, cost_out: Path, threads: int, arm: str
) -> None:
    """The search's best allocation under the budget of `level` (its entry in best.json), as a model
    of the searched arm `arm`."""
    set_threads(threads)
    meter = CostMeter(EXTRACT_SEARCHED, arm, None, torch.device("cpu"), threads)
    allocation = json.loads(Path(best_path).read_text())[budget_tag(level)]["allocation"]
    supernet = load_torch(supernet_path)
    state, masks = extract_subnetwork(supernet, allocation)
    sparsity = sparsity_of(masks)
    save_model(
        model_out,
        state,
        supernet["model_config"],
        masks,
        meta={
            "arm": arm,
            "sparsity": sparsity,
            "budget": level,
            "allocation": allocation,
            "source": str(supernet_path),
        },
    )
    meter.record.sparsity = sparsity
    meter.finish(cost_out)
