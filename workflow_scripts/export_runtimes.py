"""Rule export_runtimes: one model's streaming programs for the on-device runtimes (omni.deploy)."""

from pathlib import Path

from omni.jobs.runtime_export import RuntimeExportPaths, run_runtime_export_job
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    paths = RuntimeExportPaths(
        export=Path(smk.input.export),
        feature_stats=Path(smk.input.feature_stats),
        tokenizer=Path(smk.input.tokenizer),
        bundle=Path(smk.output.bundle),
    )
    run_runtime_export_job(smk.params.runtimes, smk.params.logmel, paths)
