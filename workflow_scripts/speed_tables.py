"""Rule speed_table: every model's speed on a device next to its size and WER (csv, md, png)."""

from omni.logs import tee_stderr
from omni.results.speed_tables import write_speed_outputs

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    write_speed_outputs(
        smk.input.records, smk.input.summaries, smk.params.split, smk.params.decode, dict(smk.output.items())
    )
