"""Rule wer_table: the WER of every model, and omni vs individual per sparsity (csv, md, tex)."""
from omni.logs import tee_stderr
from omni.results.bootstrap import BootstrapSettings
from omni.results.wer_tables import write_wer_tables

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    comparison = smk.params.comparison
    write_wer_tables(smk.input.summaries, comparison["splits"], comparison["decodes"], comparison["table_decode"],
                     BootstrapSettings.from_section(comparison), dict(smk.output.items()), smk.params.teachers)
