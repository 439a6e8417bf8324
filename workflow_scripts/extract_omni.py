"""Rule extract_omni: one uniform sparsity cut from the final supernet, no training."""

from pathlib import Path

from omni.jobs.extraction import extract_uniform
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    extract_uniform(
        Path(smk.input.supernet),
        float(smk.wildcards.sparsity),
        Path(smk.output.model),
        Path(smk.output.cost),
        smk.threads,
        smk.wildcards.arm,
    )
