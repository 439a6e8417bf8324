"""Rule strategy_table: every pruning arm per level, side by side (csv, md)."""

from omni.data.voices import read_voices
from omni.logs import tee_stderr
from omni.results.bootstrap import BootstrapSettings
from omni.results.strategy_tables import write_strategy_tables

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    comparison = smk.params.comparison
    write_strategy_tables(
        smk.input.summaries,
        smk.input.cost,
        comparison["splits"],
        comparison["table_decode"],
        BootstrapSettings.from_section(comparison),
        smk.params.pairs,
        dict(smk.output.items()),
        read_voices(smk.input.voices),
        smk.params.uncontrolled,
    )
