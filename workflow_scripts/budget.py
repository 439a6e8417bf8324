"""Rule budget: the budget curve, the break-even multiple and the savings (csv, md, png)."""

from omni.data.voices import read_voices
from omni.logs import tee_stderr
from omni.results.bootstrap import BootstrapSettings
from omni.results.budget import write_budget

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    comparison = smk.params.comparison
    write_budget(
        smk.input.summaries,
        smk.input.records,
        smk.params.results_dir,
        comparison["splits"],
        comparison["table_decode"],
        BootstrapSettings.from_section(comparison),
        smk.params.omni_arms,
        smk.params.individual_arms,
        smk.params.levels,
        dict(smk.output.items()),
        read_voices(smk.input.voices),
    )
