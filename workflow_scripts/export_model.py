"""Rule export_model: the compact files a device would load, with their size accounting."""

from pathlib import Path

from omni.atomic import write_json
from omni.jobs.export import export_model_files
from omni.logs import tee_stderr

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    info = export_model_files(
        Path(smk.input.model), smk.params.masks, {"fp32": Path(smk.output.fp32), "fp16": Path(smk.output.fp16)}
    )
    write_json(smk.output.info, info)
