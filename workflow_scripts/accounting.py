"""Rule accounting: every job's measured cost, totals per stage, and the cost of K pruned models."""

import sys

from omni.logs import tee_stderr
from omni.results.accounting import collect
from omni.results.cost_tables import headline_sentences, write_cost_tables

smk = snakemake  # noqa: F821 (injected by Snakemake)
with tee_stderr(smk.log[0]):
    account = collect(
        smk.input.records, smk.params.benchmarks, smk.params.benchmark_dir, smk.params.results_dir, smk.params.pairs
    )
    write_cost_tables(account, dict(smk.output.items()), getattr(smk.input, "break_even", None))
    for line in headline_sentences(account.headline):
        print(line, file=sys.stderr)
