# Stage: report. Tables (csv / md / tex), figures (png) and the cost account, from what the
# evaluation and training jobs measured; `snakemake --report` shows them with their captions.
# The files they read are functions of the config (omni.study), whatever the include order.

localrules: wer_table, strategy_table, accounting, figures, diagnostics, budget   # seconds each: on the submitting host


def reported(path, caption, category, subcategory=None):
    """An output that `snakemake --report` shows with its caption."""
    extra = {"subcategory": subcategory} if subcategory else {}
    return report(path, caption=f"../report/{caption}", category=category, **extra)


rule wer_table:
    """WER of every model x split x decode; omni vs individual per sparsity with bootstrap CIs."""
    input:
        summaries=STUDY.eval_summaries(),
        utterances=STUDY.eval_utterances(),
        voices=STUDY.voices(),
    output:
        wer_csv=reported(STUDY.table("wer.csv"), "wer.rst", "Tables", "WER of every model"),
        wer_md=reported(STUDY.table("wer.md"), "wer.rst", "Tables", "WER of every model"),
        sparsity_csv=reported(STUDY.table("wer_vs_sparsity.csv"), "wer_vs_sparsity.rst", "Tables", "Omni vs individual"),
        sparsity_md=reported(STUDY.table("wer_vs_sparsity.md"), "wer_vs_sparsity.rst", "Tables", "Omni vs individual"),
        sparsity_tex=reported(STUDY.table("wer_vs_sparsity.tex"), "wer_vs_sparsity.rst", "Tables", "Omni vs individual"),
        primary_csv=reported(STUDY.table("primary.csv"), "primary.rst", "Tables", "Primary endpoint"),
        primary_md=reported(STUDY.table("primary.md"), "primary.rst", "Tables", "Primary endpoint"),
    params:
        comparison=job_params.comparison(config),
        teachers=job_params.teachers(config),
        dense_models=job_params.dense_comparisons(config),
    log:
        f"{R}/logs/report/wer_table.log",
    benchmark:
        STUDY.benchmark("wer_table")
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/wer_tables.py"


rule accounting:
    """Every job's measured cost (records + benchmarks), totals per stage, cost of K models per arm (and the
    savings at the budget curve's break-even multiple, when the study has one)."""
    input:
        records=STUDY.cost_records(),
        **({"break_even": STUDY.table("budget_break_even.csv")} if STUDY.budget_curve else {}),
    output:
        csv=reported(STUDY.table("cost.csv"), "cost.rst", "Cost"),
        md=reported(STUDY.table("cost.md"), "cost.rst", "Cost"),
        tex=reported(STUDY.table("cost.tex"), "cost.rst", "Cost"),
    params:
        results_dir=R,
        benchmark_dir=STUDY.path("benchmarks"),
        benchmarks=STUDY.benchmark_files(),  # this study's jobs only, not files left by other configurations
        pairs=job_params.paired_individual(config),
    log:
        f"{R}/logs/report/accounting.log",
    benchmark:
        STUDY.benchmark("accounting")
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/accounting.py"


rule strategy_table:
    """Every pruning arm per level: WER, the difference to its paired individual arm, damage vs the
    control, and its job's cost next to one individual job."""
    input:
        summaries=STUDY.eval_summaries(),
        utterances=STUDY.eval_utterances(),
        voices=STUDY.voices(),
        cost=rules.accounting.output.csv,
    output:
        csv=reported(STUDY.table("strategies.csv"), "strategies.rst", "Tables", "Every pruning arm"),
        md=reported(STUDY.table("strategies.md"), "strategies.rst", "Tables", "Every pruning arm"),
    params:
        comparison=job_params.comparison(config),
        pairs=job_params.paired_individual(config),
        uncontrolled=job_params.on_other_dense(config),
    log:
        f"{R}/logs/report/strategy_table.log",
    benchmark:
        STUDY.benchmark("strategy_table")
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/strategy_tables.py"


rule figures:
    """WER vs size with bootstrap error bars, training curves, device-hours per arm."""
    input:
        summaries=STUDY.eval_summaries(),
        utterances=STUDY.eval_utterances(),
        voices=STUDY.voices(),
        train_logs=STUDY.train_logs(),
        cost=rules.accounting.output.csv,
    output:
        pareto=reported(STUDY.figure("pareto.png"), "pareto.rst", "Figures"),
        training_curves=reported(STUDY.figure("training_curves.png"), "training_curves.rst", "Figures"),
        cost=reported(STUDY.figure("cost.png"), "cost_figure.rst", "Cost"),
    params:
        comparison=job_params.comparison(config),
        train_labels=STUDY.train_log_labels(),
    log:
        f"{R}/logs/report/figures.log",
    benchmark:
        STUDY.benchmark("figures")
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/figures.py"


DIAGNOSED_SPLIT = "test-other"   # the mismatched condition, whose voices the diagnostics break the gap down by


rule diagnostics:
    """Every supernet level against its individual job: training-loss gap, mask churn and IoU, per voice."""
    input:
        files=[path for run in STUDY.diagnostic_runs(job_params.paired_individual(config), DIAGNOSED_SPLIT)
               for key, path in run.items() if key.endswith(("_log", "_model"))],
        utterances=[f"{folder}/{config['report']['table_decode']}.tsv"
                    for run in STUDY.diagnostic_runs(job_params.paired_individual(config), DIAGNOSED_SPLIT)
                    for folder in (run["omni_eval"], run["individual_eval"])],
        voices=STUDY.voices(),
    output:
        csv=reported(STUDY.table("diagnostics.csv"), "diagnostics.rst", "Diagnostics"),
        voices_csv=reported(STUDY.table("diagnostics_voices.csv"), "diagnostics.rst", "Diagnostics"),
        md=reported(STUDY.table("diagnostics.md"), "diagnostics.rst", "Diagnostics"),
        png=reported(STUDY.figure("diagnostics.png"), "diagnostics.rst", "Diagnostics"),
    params:
        runs=STUDY.diagnostic_runs(job_params.paired_individual(config), DIAGNOSED_SPLIT),
        split=DIAGNOSED_SPLIT,
        decode=config["report"]["table_decode"],
    log:
        f"{R}/logs/report/diagnostics.log",
    benchmark:
        STUDY.benchmark("diagnostics")
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/diagnostics.py"


rule budget:
    """The budget curve: omni(m) and individual(m) against individual(1x), the break-even multiple, the savings."""
    input:
        summaries=STUDY.eval_summaries(),
        utterances=STUDY.eval_utterances(),
        voices=STUDY.voices(),
        records=STUDY.budget_cost_records(),
    output:
        csv=reported(STUDY.table("budget.csv"), "budget.rst", "Budget"),
        break_even_csv=reported(STUDY.table("budget_break_even.csv"), "budget.rst", "Budget"),
        md=reported(STUDY.table("budget.md"), "budget.rst", "Budget"),
        png=reported(STUDY.figure("budget.png"), "budget.rst", "Budget"),
    params:
        comparison=job_params.comparison(config),
        results_dir=R,
        omni_arms=job_params.budget_multiples(config, "omni"),
        individual_arms=job_params.budget_multiples(config, "individual"),
        levels=len(job_params.omni_levels(config)),
    log:
        f"{R}/logs/report/budget.log",
    benchmark:
        STUDY.benchmark("budget")
    threads: 1
    resources:
        **stage_resources("light"),
    script:
        "../workflow_scripts/budget.py"
