"""Rule figures: WER vs size (Pareto), training curves, and cost per arm (png)."""

from omni.data.voices import read_voices
from omni.logs import tee_stderr
from omni.results.bootstrap import BootstrapSettings
from omni.results.cost_tables import read_cost_jobs
from omni.results.figures import cost_figure, pareto_figure, save, training_curves_figure
from omni.results.wer_tables import load_summaries

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    comparison = smk.params.comparison
    settings = BootstrapSettings.from_section(comparison)
    save(
        pareto_figure(
            load_summaries(smk.input.summaries),
            comparison["splits"],
            comparison["table_decode"],
            settings,
            read_voices(smk.input.voices),
        ),
        smk.output.pareto,
    )
    save(training_curves_figure(smk.input.train_logs, smk.params.train_labels), smk.output.training_curves)
    save(cost_figure(read_cost_jobs(smk.input.cost)), smk.output.cost)
