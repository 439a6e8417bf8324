"""Rule device_metrics: one model streamed on every path a device could run it (speed, memory, WER)."""

from pathlib import Path

from omni.jobs.device_metrics import DeviceMetricsPaths, run_device_metrics_job
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    bundle = smk.input.get("bundle")
    paths = DeviceMetricsPaths(
        export=Path(smk.input.export),
        bundle=Path(bundle) if bundle else None,
        manifest=Path(smk.input.manifest),
        feature_stats=Path(smk.input.feature_stats),
        tokenizer=Path(smk.input.tokenizer),
        out=Path(smk.output.record),
    )
    run_device_metrics_job(
        smk.params.speed,
        smk.params.logmel,
        smk.wildcards.arm,
        int(smk.wildcards.seed),
        smk.wildcards.tag,
        paths,
        smk.threads,
    )
