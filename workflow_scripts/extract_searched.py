"""Rule extract_searched: the searched per-layer allocation under one budget, cut from the final
supernet with no training."""
import json
from pathlib import Path

import torch

from omni.atomic import load_torch
from omni.costs import CostMeter
from omni.sparsity.extract import extract_subnetwork
from omni.logs import tee_stderr
from omni.asr.model import save_model
from omni.runtime import set_threads
from omni.sparsity.search import ARM, budget_tag
from omni.sparsity.masks import sparsity_of

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    set_threads(smk.threads)
    level = float(smk.wildcards.budget)
    meter = CostMeter("extract_searched", ARM, None, torch.device("cpu"), smk.threads)
    allocation = json.loads(Path(smk.input.best).read_text())[budget_tag(level)]["allocation"]
    supernet = load_torch(smk.input.supernet)
    state, masks = extract_subnetwork(supernet, smk.config["sparsity"], allocation)
    sparsity = sparsity_of(masks)
    save_model(smk.output.model, state, supernet["model_config"], masks,
               meta={"arm": ARM, "sparsity": sparsity, "budget": level, "allocation": allocation,
                     "source": str(smk.input.supernet)})
    meter.record.sparsity = sparsity
    meter.finish(smk.output.cost)
