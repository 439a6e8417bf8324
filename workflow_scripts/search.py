"""Rule search: evolutionary per-layer sparsity search on the supernet, scored on dev WER."""

from pathlib import Path

from omni.jobs.search import SearchPaths, run_search_job
from omni.logs import tee_stderr
from omni.study import Study

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    paths = SearchPaths(
        supernet=Path(smk.input.supernet),
        manifest=Path(smk.input.manifest),
        feature_stats=Path(smk.input.feature_stats),
        tokenizer=Path(smk.input.tokenizer),
        pareto=Path(smk.output.pareto),
        history=Path(smk.output.history),
        best=Path(smk.output.best),
        cost=Path(smk.output.cost),
    )
    run_search_job(
        smk.params.search, smk.params.masks, smk.params.logmel, paths, smk.threads, Study.searched(smk.wildcards.arm)
    )
