"""Rule wer_table: the WER of every model, and omni vs individual per sparsity (csv, md, tex)."""
from omni.results.bootstrap import BootstrapSettings
from omni.logs import tee_stderr
from omni.results.tables import write_wer_tables

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    report = smk.params.report
    write_wer_tables(smk.input.summaries, smk.params.splits, smk.params.decodes, report["table_decode"],
                     BootstrapSettings.from_report_config(report), dict(smk.output.items()))
