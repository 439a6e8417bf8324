"""Rule wer_table: the WER of every model, omni vs individual per sparsity (csv, md, tex), and the
primary endpoint (omni vs individual pooled over levels, test-other first)."""

from omni.data.voices import read_voices
from omni.logs import tee_stderr
from omni.results.bootstrap import BootstrapSettings
from omni.results.primary import write_primary
from omni.results.wer_tables import write_wer_tables

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    comparison = smk.params.comparison
    settings = BootstrapSettings.from_section(comparison)
    outputs = dict(smk.output.items())
    voices = read_voices(smk.input.voices)
    write_wer_tables(
        smk.input.summaries,
        comparison["splits"],
        comparison["decodes"],
        comparison["table_decode"],
        settings,
        outputs,
        smk.params.teachers,
        voices,
    )
    write_primary(
        smk.input.summaries,
        comparison["splits"],
        comparison["table_decode"],
        settings,
        outputs["primary_csv"],
        outputs["primary_md"],
        smk.params.dense_models,
        voices,
    )
