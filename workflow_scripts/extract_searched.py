"""Rule extract_searched: the searched per-layer allocation under one budget, cut from the final
supernet with no training."""

from pathlib import Path

from omni.jobs.extraction import extract_searched
from omni.logs import tee_stderr
from omni.study import Study

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    extract_searched(
        Path(smk.input.supernet),
        Path(smk.input.best),
        float(smk.wildcards.budget),
        Path(smk.output.model),
        Path(smk.output.cost),
        smk.threads,
        Study.searched(smk.wildcards.arm),
    )
