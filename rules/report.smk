# Stage: report. Tables (csv / md / tex), figures (png) and the cost account, from what the
# evaluation and training jobs measured; `snakemake --report` shows them with their captions.
#
# Requires these lists, defined by the rule files included before this one:
#   EVAL_SUMMARIES  (rules/evaluate.smk)  every {R}/eval/{arm}/{tag}/{split}/summary.json
#   COST_RECORDS    (rules/common.smk, appended by each stage)  every cost.json
#   TRAIN_LOGS      (rules/common.smk, appended by each stage)  every train_log.csv
#
# Config reaches the scripts only through `params:`, so changing a `report.*` value reruns these
# rules and nothing upstream.
import os

REPORT_RULES = ["wer_table", "accounting", "figures"]
TABLE_DECODE = config["report"]["table_decode"]
if TABLE_DECODE not in config["evaluate"]["decodes"]:
    raise ValueError(f"config key 'report.table_decode': {TABLE_DECODE!r} is not among "
                     f"evaluate.decodes {config['evaluate']['decodes']}, so no model is scored with it")
# Per-utterance error counts of the decode the tables and figures compare (paired bootstrap).
EVAL_UTTERANCES = [os.path.join(os.path.dirname(summary), f"{TABLE_DECODE}.tsv") for summary in EVAL_SUMMARIES]


rule wer_table:
    """WER of every model x split x decode; omni vs individual per sparsity with bootstrap CIs."""
    input:
        summaries=EVAL_SUMMARIES,
        utterances=EVAL_UTTERANCES,
    output:
        wer_csv=report(f"{R}/tables/wer.csv", caption="../report/wer.rst", category="Tables",
                       subcategory="WER of every model"),
        wer_md=report(f"{R}/tables/wer.md", caption="../report/wer.rst", category="Tables",
                      subcategory="WER of every model"),
        sparsity_csv=report(f"{R}/tables/wer_vs_sparsity.csv", caption="../report/wer_vs_sparsity.rst",
                            category="Tables", subcategory="Omni vs individual"),
        sparsity_md=report(f"{R}/tables/wer_vs_sparsity.md", caption="../report/wer_vs_sparsity.rst",
                           category="Tables", subcategory="Omni vs individual"),
        sparsity_tex=report(f"{R}/tables/wer_vs_sparsity.tex", caption="../report/wer_vs_sparsity.rst",
                            category="Tables", subcategory="Omni vs individual"),
    params:
        splits=EVAL_SPLITS,
        decodes=config["evaluate"]["decodes"],
        report=config["report"],
    log:
        f"{R}/logs/report/wer_table.log",
    benchmark:
        f"{R}/benchmarks/wer_table.tsv"
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/tables.py"


rule accounting:
    """Every job's measured cost (records + benchmarks), totals per stage, cost of K models per arm."""
    input:
        records=COST_RECORDS,
    output:
        csv=report(f"{R}/tables/cost.csv", caption="../report/cost.rst", category="Cost"),
        md=report(f"{R}/tables/cost.md", caption="../report/cost.rst", category="Cost"),
        tex=report(f"{R}/tables/cost.tex", caption="../report/cost.rst", category="Cost"),
    params:
        results_dir=R,
        benchmarks=f"{R}/benchmarks",
        exclude_rules=REPORT_RULES,
    log:
        f"{R}/logs/report/accounting.log",
    benchmark:
        f"{R}/benchmarks/accounting.tsv"
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/accounting.py"


rule figures:
    """WER vs size with bootstrap error bars, training curves, device-hours per arm."""
    input:
        summaries=EVAL_SUMMARIES,
        utterances=EVAL_UTTERANCES,
        train_logs=TRAIN_LOGS,
        cost=rules.accounting.output.csv,
    output:
        pareto=report(f"{R}/figures/pareto.png", caption="../report/pareto.rst", category="Figures"),
        training_curves=report(f"{R}/figures/training_curves.png", caption="../report/training_curves.rst",
                               category="Figures"),
        cost=report(f"{R}/figures/cost.png", caption="../report/cost_figure.rst", category="Cost"),
    params:
        splits=EVAL_SPLITS,
        report=config["report"],
    log:
        f"{R}/logs/report/figures.log",
    benchmark:
        f"{R}/benchmarks/figures.tsv"
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/figures.py"


ALL_TARGETS += [*rules.wer_table.output, *rules.accounting.output, *rules.figures.output]
