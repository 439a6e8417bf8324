"""Extraction jobs: a sub-network cut from the final supernet, with no training, saved as a
model artefact with its cost record. A uniform level (the omni arm) or a searched per-layer
allocation (the omni-searched arm)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from omni.asr.model import save_model
from omni.atomic import load_torch
from omni.costs import CostMeter
from omni.jobs.search import ARM as SEARCHED_ARM
from omni.runtime import set_threads
from omni.sparsity.extract import extract_subnetwork
from omni.sparsity.masks import sparsity_of
from omni.sparsity.search import budget_tag


def extract_uniform(supernet_path: Path, sparsity: float, model_out: Path, cost_out: Path, threads: int) -> None:
    """The omni model at one level, cut with the rankings the supernet last trained."""
    set_threads(threads)
    meter = CostMeter("extract_omni", "omni", sparsity, torch.device("cpu"), threads)
    supernet = load_torch(supernet_path)
    state, masks = extract_subnetwork(supernet, sparsity)
    save_model(model_out, state, supernet["model_config"], masks,
               meta={"arm": "omni", "sparsity": sparsity, "source": str(supernet_path)})
    meter.finish(cost_out)


def extract_searched(supernet_path: Path, best_path: Path, level: float, model_out: Path, cost_out: Path,
                     threads: int) -> None:
    """The search's best allocation under the budget of `level` (its entry in best.json)."""
    set_threads(threads)
    meter = CostMeter("extract_searched", SEARCHED_ARM, None, torch.device("cpu"), threads)
    allocation = json.loads(Path(best_path).read_text())[budget_tag(level)]["allocation"]
    supernet = load_torch(supernet_path)
    state, masks = extract_subnetwork(supernet, allocation)
    sparsity = sparsity_of(masks)
    save_model(model_out, state, supernet["model_config"], masks,
               meta={"arm": SEARCHED_ARM, "sparsity": sparsity, "budget": level, "allocation": allocation,
                     "source": str(supernet_path)})
    meter.record.sparsity = sparsity
    meter.finish(cost_out)
