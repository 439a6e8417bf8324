"""Rule extract_omni: one uniform sparsity cut from the final supernet, no training."""
import torch

from omni.atomic import load_torch
from omni.costs import CostMeter
from omni.sparsity.extract import extract_subnetwork
from omni.logs import tee_stderr
from omni.asr.model import save_model
from omni.runtime import set_threads

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    set_threads(smk.threads)
    sparsity = float(smk.wildcards.sparsity)
    meter = CostMeter("extract_omni", "omni", sparsity, torch.device("cpu"), smk.threads)
    supernet = load_torch(smk.input.supernet)
    state, masks = extract_subnetwork(supernet, smk.config["sparsity"], sparsity)
    save_model(smk.output.model, state, supernet["model_config"], masks,
               meta={"arm": "omni", "sparsity": sparsity, "source": str(smk.input.supernet)})
    meter.finish(smk.output.cost)
