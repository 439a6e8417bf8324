"""Cost tables: every job's measured cost, totals per stage, and what producing K pruned models
cost each arm (CSV, Markdown, LaTeX via pandas' Styler)."""
from __future__ import annotations

import os

import pandas as pd

from omni.atomic import write_dataframe, write_text
from omni.results.accounting import (
    ARM_COLUMNS,
    DENSE_ITEM,
    INDIVIDUAL_ITEM,
    JOB_COLUMNS,
    OMNI_ITEM,
    RATIO_ITEM,
    Accounting,
)
from omni.results.primary import PRIMARY_SPLIT
from omni.results.formatting import (
    MISSING,
    RATIO_DECIMALS,
    fmt_hours,
    fmt_int,
    fmt_sparsity,
    fmt_wall,
    latex_table,
    markdown,
)


ARM_SECTION = "arm"   # rows of cost.csv: one training job per pruning arm (omni.results.strategy_tables reads them)


def arm_markdown(arms: pd.DataFrame) -> str:
    """One training job per pruning arm next to one job of the individual arm it is compared with."""
    shown = pd.DataFrame({
        "arm": arms["arm"], "unit": arms["unit"], "seeds": arms["seeds"].map(fmt_int),
        "jobs per seed": arms["jobs"].map(lambda v: f"{v:g}"),
        "one job (device-hours)": arms["job_device_hours"].map(fmt_hours),
        "one job wall (s)": arms["job_wall_s"].map(fmt_wall), "paired individual arm": arms["paired_individual"],
        "/ one individual job": arms["vs_one_individual_job"].map(lambda v: f"{v:.{RATIO_DECIMALS}f}x"),
        "/ individual arm (K jobs)": arms["vs_individual_arm"].map(lambda v: f"{v:.{RATIO_DECIMALS}f}x"),
    })
    return markdown(shown)


def cost_frame(accounting: Accounting) -> pd.DataFrame:
    """Jobs, per-stage totals and headline lines in one CSV, told apart by `section`.

    Count columns are nullable integers, so blanks of the other sections do not turn them into floats.
    """
    frame = pd.concat([accounting.jobs.assign(section="job"),
                      accounting.totals.assign(section="total"),
                      accounting.headline.assign(section="headline"),
                      accounting.arms.assign(section=ARM_SECTION)], ignore_index=True)[
        ["section", "stage", "item", "rule", "arm", "seed", "sparsity", "device", "device_count", "processes",
         "threads", "seeds", "jobs", "models", "wall_s", "device_hours", "unit", "audio_hours", "peak_mem_mb",
         "source", *ARM_COLUMNS[1:2], *ARM_COLUMNS[5:]]]
    counts = ["seed", "device_count", "processes", "threads", "seeds"]
    return frame.astype({column: "Int64" for column in counts})


def read_cost_jobs(path: str | os.PathLike) -> pd.DataFrame:
    """The per-job rows of a cost.csv written by `write_cost_tables` (what the cost figure plots)."""
    frame = pd.read_csv(path)
    return frame.loc[frame["section"] == "job", JOB_COLUMNS].reset_index(drop=True)


def headline_sentences(headline: pd.DataFrame) -> list[str]:
    """One plain-language line per unit: the claim (2) of the paper, measured."""
    lines = []
    for unit, block in headline.groupby("unit", sort=False):
        part = block.set_index("item")
        individual, omni, dense = part.loc[INDIVIDUAL_ITEM], part.loc[OMNI_ITEM], part.loc[DENSE_ITEM]
        sentence = (f"{unit}, per training seed (mean over {int(individual['seeds'])}): K = "
                    f"{individual['models']:g} individually pruned models cost {fmt_hours(individual['device_hours'])} "
                    f"({individual['jobs']:g} jobs); omni (supernet + {omni['models']:g} extractions) cost "
                    f"{fmt_hours(omni['device_hours'])}")
        if RATIO_ITEM in part.index:
            sentence += f"; {RATIO_ITEM} = {part.at[RATIO_ITEM, 'device_hours']:.{RATIO_DECIMALS}f}x"
        lines.append(f"{sentence}. Dense training, shared by both: {fmt_hours(dense['device_hours'])}.")
    return lines


def break_even_markdown(break_even: pd.DataFrame) -> list[str]:
    """The budget curve's savings on the primary split (omni.results.budget): K / m* of the pruning phase and
    (D + K) / (D + m*) end to end, per level and pooled."""
    rows = break_even[break_even["split"] == PRIMARY_SPLIT]
    if rows.empty:
        return []
    view = pd.DataFrame({
        "level": rows["level"], "break-even multiple m*": rows["m_star_text"],
        "m* range": [f"[{low}, {high}]" for low, high in zip(rows["m_star_low_text"], rows["m_star_high_text"])],
        "pruning-phase saving K / m*": rows["training_saving"].map(fmt_saving),
        "end-to-end saving (D + K) / (D + m*)": rows["end_to_end_saving"].map(fmt_saving),
    })
    first = rows.iloc[0]
    return ["## Saving at the break-even multiple", "",
            f"From tables/budget.md ({PRIMARY_SPLIT}): K = {first['levels']} levels, D = "
            f"{first['dense_job_units']:.2f} individual jobs (the dense job's measured device-hours over one "
            "individual job's). A saving below 1x is a loss; n/a: the supernet did not break even within the "
            "measured multiples.", "", markdown(view), ""]


def fmt_saving(value: float) -> str:
    return "n/a" if pd.isna(value) else f"{value:.2f}x"


def cost_markdown(accounting: Accounting, break_even: pd.DataFrame | None = None) -> str:
    jobs = accounting.jobs
    job_view = pd.DataFrame({
        "stage": jobs["stage"], "rule": jobs["rule"], "arm": jobs["arm"].fillna(MISSING),
        "seed": jobs["seed"].map(fmt_int), "sparsity": jobs["sparsity"].map(fmt_sparsity), "device": jobs["device"],
        "devices": jobs["device_count"], "processes": jobs["processes"],
        "threads": jobs["threads"].map(fmt_int), "wall (s)": jobs["wall_s"].map(fmt_wall),
        "device-hours": jobs["device_hours"].map(fmt_hours), "unit": jobs["unit"],
        "audio hours": jobs["audio_hours"].map(fmt_hours), "peak mem (MB)": jobs["peak_mem_mb"].map(fmt_wall),
        "source": jobs["source"],
    })
    totals = accounting.totals
    total_view = pd.DataFrame({
        "stage": totals["stage"], "unit": totals["unit"], "jobs": totals["jobs"],
        "wall (s)": totals["wall_s"].map(fmt_wall), "device-hours": totals["device_hours"].map(fmt_hours),
        "audio hours": totals["audio_hours"].map(fmt_hours),
        "max peak mem (MB)": totals["peak_mem_mb"].map(fmt_wall),
    })
    check = accounting.crosscheck
    check_view = pd.DataFrame({
        "rule": check["rule"], "jobs (records)": check["record_jobs"],
        "wall (s), records": check["record_wall_s"].map(fmt_wall),
        "runs (benchmarks)": check["benchmark_runs"],
        "wall (s), benchmarks": check["benchmark_wall_s"].map(fmt_wall),
        "benchmark / record": check["benchmark_over_record"].map(lambda v: f"{v:.2f}"),
    })
    sections = [
        "## Cost of producing K pruned models", "",
        "Each arm ran once per training seed; a line is the mean over its seeds (one study's cost). "
        "The dense model is trained once and shared.", "",
        *[f"- {line}" for line in headline_sentences(accounting.headline)], "",
        "## One training job per arm", "",
        "An omni arm's job is its supernet plus its K extractions; an individual arm's, one of its K jobs (mean "
        "over jobs and seeds). Each is set next to one job of the individual arm it is compared with (the one "
        "with the same external teacher): equal compute reads ~1.00x there.", "",
        arm_markdown(accounting.arms), "",
        *(break_even_markdown(break_even) if break_even is not None else []),
        "## Totals per stage", "", markdown(total_view), "",
        "## Jobs", "",
        "Device-hours are GPU-hours on GPUs and CPU core-hours (wall x threads) on CPUs, never converted. "
        "Rows whose source is a benchmark file are rules without a cost record: their core-hours are the "
        "CPU time Snakemake measured.", "",
        markdown(job_view), "",
        "## Cross-check with Snakemake benchmarks", "",
        "Benchmarks include interpreter start-up and I/O, and only a rerun's last segment of a resumed job.", "",
        markdown(check_view) if not check_view.empty else "No rule has both a cost record and a benchmark.", "",
    ]
    return "\n".join(sections)


def cost_latex(accounting: Accounting) -> str:
    """Totals and headline (the paper's cost table), then every job (appendix material)."""
    summary = [(row.stage, row.unit, fmt_int(row.jobs), fmt_wall(row.wall_s), fmt_hours(row.device_hours))
               for row in accounting.totals.itertuples()]
    for row in accounting.headline.itertuples():
        if row.item == RATIO_ITEM:
            summary.append((row.item, row.unit, "", f"{row.wall_s:.{RATIO_DECIMALS}f}x",
                            f"{row.device_hours:.{RATIO_DECIMALS}f}x"))
        else:
            label = f"{row.item} ({row.models:g} models)" if row.models else row.item
            summary.append((label, row.unit, f"{row.jobs:g}", fmt_wall(row.wall_s), fmt_hours(row.device_hours)))
    summary_frame = pd.DataFrame(summary, columns=["Stage", "Unit", "Jobs", "Wall (s)", "Device-hours"])
    jobs = accounting.jobs
    job_frame = pd.DataFrame({
        "Rule": jobs["rule"], "Arm": jobs["arm"].fillna(MISSING), "Seed": jobs["seed"].map(fmt_int),
        "Sparsity": jobs["sparsity"].map(fmt_sparsity),
        "Device": jobs["device"], "Wall (s)": jobs["wall_s"].map(fmt_wall),
        "Device-hours": jobs["device_hours"].map(fmt_hours), "Unit": jobs["unit"],
    })
    return "\n".join([
        r"% requires \usepackage{booktabs}",
        latex_table(summary_frame, "llrrr", "table",
                     "Measured training and evaluation cost per stage (all training seeds), then the cost of "
                     "producing K pruned models per training seed (mean over seeds; dense shown apart: both arms "
                     "and every seed start from it). Device-hours are GPU-hours on GPUs and CPU "
                     "core-hours on CPUs, never converted.", "tab:cost"),
        latex_table(job_frame, "llrrlrrl", "table*", "Every job of the study.", "tab:cost-jobs"),
    ])


def write_cost_tables(accounting: Accounting, outputs: dict[str, str | os.PathLike],
                      break_even_csv: str | os.PathLike | None = None) -> None:
    """outputs keys: csv, md, tex. `break_even_csv`: the budget curve's table, when the study has one."""
    write_dataframe(outputs["csv"], cost_frame(accounting))
    break_even = pd.read_csv(break_even_csv) if break_even_csv else None
    write_text(outputs["md"], cost_markdown(accounting, break_even))
    write_text(outputs["tex"], cost_latex(accounting))
