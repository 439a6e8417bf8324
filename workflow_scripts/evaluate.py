"""Rule evaluate: one model on one split in every configured decode mode."""

from pathlib import Path

from omni.jobs.evaluation import EvaluationPaths, run_evaluation_job
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    paths = EvaluationPaths(
        model=Path(smk.input.model),
        export_info=Path(smk.input.export_info),
        manifest=Path(smk.input.manifest),
        feature_stats=Path(smk.input.feature_stats),
        tokenizer=Path(smk.input.tokenizer),
        out_dir=Path(smk.output.summary).parent,
        cost_out=Path(smk.output.cost),
    )
    run_evaluation_job(
        smk.params.evaluation,
        smk.params.logmel,
        smk.wildcards.arm,
        int(smk.wildcards.seed),
        smk.wildcards.tag,
        smk.wildcards.split,
        paths,
        smk.threads,
    )
