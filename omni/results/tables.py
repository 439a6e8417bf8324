"""Result tables: every WER measured, the omni-vs-individual comparison, and the cost account.

Each table is written as CSV (for machines, raw fractions), Markdown (for the README/report)
and, where a paper needs it, LaTeX (booktabs, ready to paste). Everything is read from the
evaluation summaries and per-utterance TSVs, never from a model.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from omni.results.accounting import ARMS, DENSE_ITEM, INDIVIDUAL_ITEM, JOB_COLUMNS, OMNI_ITEM, RATIO_ITEM, Accounting
from omni.atomic import write_dataframe, write_text
from omni.results.bootstrap import BootstrapSettings, PairedDifference, paired_bootstrap

DENSE_TAG = "dense"
LEVEL_PREFIX = "s"    # tag of a uniform sparsity level, e.g. s0.7
BUDGET_PREFIX = "b"   # tag of a searched model under the size of uniform level, e.g. b0.7
PERCENT = 100.0
MILLION = 1e6
BYTES_PER_MB = 1e6
SIGNIFICANT_MARK = "*"
MISSING = "–"
# Display precision (CSV keeps full precision).
WER_DECIMALS = 2
REL_DECIMALS = 1
RATIO_DECIMALS = 2
SPARSITY_DECIMALS = 3
SIZE_DECIMALS = 2
WALL_DECIMALS = 0
HOURS_DIGITS = 4      # significant digits: core-hours of a tiny CPU job and GPU-days both read well

MODEL_FIELDS = ("arm", "tag", "sparsity", "split", "params_total", "params_kept", "prunable_total",
                "prunable_kept", "export_bytes_fp32", "export_bytes_fp16")
DECODE_FIELDS = ("wer", "cer", "utterances", "words", "decode_seconds", "audio_seconds", "rtf")
WER_COLUMNS = ["arm", "tag", "sparsity", "params_kept", "export_bytes_fp32", "export_bytes_fp16",
               "split", "decode", "wer", "cer", "utterances"]
_ERROR_COLUMNS = ["substitutions", "deletions", "insertions"]


@dataclass(frozen=True)
class Comparison:
    """One row of the sparsity table: which model sets the size, and the two WERs compared."""

    model: str                         # dense | uniform | searched
    tag: str
    size_from: tuple[str, str]         # (arm, tag) whose size and sparsity the row shows
    individual: tuple[str, str]
    omni: tuple[str, str] | None


# ---------------------------------------------------------------- loading


def load_summaries(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """One row per model x split x decode; `eval_dir` locates the per-utterance TSVs."""
    rows = []
    for path in paths:
        summary = json.loads(Path(path).read_text())
        model = {key: summary[key] for key in MODEL_FIELDS}
        for decode, scores in summary["decodes"].items():
            rows.append({**model, "decode": decode, **{key: scores[key] for key in DECODE_FIELDS},
                         "eval_dir": str(Path(path).parent)})
    return pd.DataFrame(rows, columns=[*MODEL_FIELDS, "decode", *DECODE_FIELDS, "eval_dir"])


def utterance_errors(eval_dir: str | os.PathLike, decode: str) -> pd.DataFrame:
    """utt_id, word errors (S + D + I) and reference words of one model on one split."""
    table = pd.read_csv(Path(eval_dir) / f"{decode}.tsv", sep="\t", keep_default_na=False,
                        dtype={"utt_id": str})
    return pd.DataFrame({"utt_id": table["utt_id"], "errors": table[_ERROR_COLUMNS].sum(axis=1),
                         "ref_words": table["ref_words"]})


# ---------------------------------------------------------------- WER of every model


def wer_table(summaries: pd.DataFrame, splits: Sequence[str], decodes: Sequence[str]) -> pd.DataFrame:
    """Every measured (arm, tag, split, decode), raw fractions as in the summaries.

    Order: arms as in the study, then sparsity, then splits and decodes as in the config.
    """
    ranks = {"_arm": summaries["arm"].map(_ranks(ARMS)), "_split": summaries["split"].map(_ranks(splits)),
             "_decode": summaries["decode"].map(_ranks(decodes))}
    ordered = summaries.assign(**ranks).sort_values(["_arm", "sparsity", "tag", "_split", "_decode"])
    return ordered[WER_COLUMNS].reset_index(drop=True)


def _ranks(names: Sequence[str]) -> dict[str, int]:
    return {name: rank for rank, name in enumerate(names)}


def wer_markdown(table: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "arm": table["arm"], "tag": table["tag"], "sparsity": table["sparsity"].map(_fmt_sparsity),
        "params kept (M)": (table["params_kept"] / MILLION).map(_fmt_size),
        "export fp32 (MB)": (table["export_bytes_fp32"] / BYTES_PER_MB).map(_fmt_size),
        "export fp16 (MB)": (table["export_bytes_fp16"] / BYTES_PER_MB).map(_fmt_size),
        "split": table["split"], "decode": table["decode"],
        "WER (%)": (PERCENT * table["wer"]).map(_fmt_wer), "CER (%)": (PERCENT * table["cer"]).map(_fmt_wer),
        "utterances": table["utterances"],
    })
    return shown.to_markdown(index=False, disable_numparse=True) + "\n"


# ---------------------------------------------------------------- omni vs individual per sparsity


def comparisons(summaries: pd.DataFrame) -> list[Comparison]:
    """Dense first, then uniform levels by sparsity, then searched models by budget.

    A searched model under the size budget of level s is compared with the individual model
    pruned to s, the model of the same size an individual-pruning study would have produced.
    """
    models = summaries.drop_duplicates(["arm", "tag"]).set_index(["arm", "tag"])
    rows = []
    if ("dense", DENSE_TAG) in models.index:
        rows.append(Comparison("dense", DENSE_TAG, ("dense", DENSE_TAG), ("dense", DENSE_TAG), None))
    uniform = models.loc[models.index.get_level_values("arm").isin(["individual", "omni"])]
    for tag in uniform.sort_values("sparsity").index.get_level_values("tag").unique():
        size_arm = "omni" if ("omni", tag) in models.index else "individual"
        rows.append(Comparison("uniform", tag, (size_arm, tag), ("individual", tag), ("omni", tag)))
    searched = models.loc[models.index.get_level_values("arm") == "omni-searched"]
    for tag in sorted(searched.index.get_level_values("tag"), key=_budget_of):
        level_tag = f"{LEVEL_PREFIX}{tag.removeprefix(BUDGET_PREFIX)}"
        rows.append(Comparison("searched", tag, ("omni-searched", tag), ("individual", level_tag),
                               ("omni-searched", tag)))
    return rows


def sparsity_table(summaries: pd.DataFrame, splits: Sequence[str], decode: str,
                   settings: BootstrapSettings) -> pd.DataFrame:
    """Rows = models of `comparisons`; per split: individual WER, omni WER, difference and its CI.

    Differences are omni - individual (negative = omni better), relative to the individual WER,
    from a paired bootstrap over the split's utterances.
    """
    scored = summaries[summaries["decode"] == decode].set_index(["arm", "tag", "split"])
    models = summaries.drop_duplicates(["arm", "tag"]).set_index(["arm", "tag"])
    rows = []
    for comparison in comparisons(summaries):
        size = models.loc[comparison.size_from]
        row: dict[str, object] = {
            "model": comparison.model, "tag": comparison.tag, "sparsity": size["sparsity"],
            "params_kept": size["params_kept"],
            "export_mb_fp32": size["export_bytes_fp32"] / BYTES_PER_MB,
            "export_mb_fp16": size["export_bytes_fp16"] / BYTES_PER_MB,
        }
        for split in splits:
            row.update(_split_cells(scored, comparison, split, decode, settings))
        rows.append(row)
    return pd.DataFrame(rows)


def _split_cells(scored: pd.DataFrame, comparison: Comparison, split: str, decode: str,
                 settings: BootstrapSettings) -> dict[str, object]:
    individual = _lookup(scored, comparison.individual, split)
    omni = _lookup(scored, comparison.omni, split) if comparison.omni else None
    cells: dict[str, object] = {
        f"{split}/individual_wer": np.nan if individual is None else individual["wer"],
        f"{split}/omni_wer": np.nan if omni is None else omni["wer"],
        f"{split}/abs_diff": np.nan, f"{split}/abs_ci_low": np.nan, f"{split}/abs_ci_high": np.nan,
        f"{split}/rel_diff_pct": np.nan, f"{split}/rel_ci_low_pct": np.nan,
        f"{split}/rel_ci_high_pct": np.nan, f"{split}/excludes_zero": np.nan,
    }
    if individual is None or omni is None:
        return cells
    difference = _paired(omni["eval_dir"], individual["eval_dir"], decode, settings)
    cells.update({
        f"{split}/abs_diff": difference.diff_abs,
        f"{split}/abs_ci_low": difference.ci_abs[0], f"{split}/abs_ci_high": difference.ci_abs[1],
        f"{split}/rel_diff_pct": difference.diff_rel_pct,
        f"{split}/rel_ci_low_pct": difference.ci_rel_pct[0], f"{split}/rel_ci_high_pct": difference.ci_rel_pct[1],
        f"{split}/excludes_zero": difference.excludes_zero,
    })
    return cells


def _lookup(scored: pd.DataFrame, model: tuple[str, str], split: str) -> pd.Series | None:
    key = (*model, split)
    return scored.loc[key] if key in scored.index else None


def _paired(omni_dir: str, individual_dir: str, decode: str, settings: BootstrapSettings) -> PairedDifference:
    omni = utterance_errors(omni_dir, decode)
    individual = utterance_errors(individual_dir, decode)
    if not omni["utt_id"].equals(individual["utt_id"]):
        raise ValueError(f"{omni_dir} and {individual_dir} score different utterances ({decode}.tsv); "
                         "a paired comparison needs the same ones in the same order")
    if not omni["ref_words"].equals(individual["ref_words"]):
        raise ValueError(f"{omni_dir} and {individual_dir} disagree on reference word counts")
    return paired_bootstrap(omni["errors"], individual["errors"], omni["ref_words"], settings)


def sparsity_markdown(table: pd.DataFrame, splits: Sequence[str], decode: str,
                      settings: BootstrapSettings) -> str:
    shown = pd.DataFrame({
        "model": [_row_label(row) for row in table.itertuples()],
        "sparsity": table["sparsity"].map(_fmt_sparsity),
        "params (M)": (table["params_kept"] / MILLION).map(_fmt_size),
        "export fp32 (MB)": table["export_mb_fp32"].map(_fmt_size),
    })
    confidence = _fmt_confidence(settings.confidence)
    for split in splits:
        shown[f"{split} ind."] = (PERCENT * table[f"{split}/individual_wer"]).map(_fmt_wer)
        shown[f"{split} omni"] = (PERCENT * table[f"{split}/omni_wer"]).map(_fmt_wer)
        shown[f"{split} Δ rel."] = table[f"{split}/rel_diff_pct"].map(_fmt_rel)
        shown[f"{split} {confidence} CI"] = [_fmt_ci(table, split, i) for i in table.index]
    return (shown.to_markdown(index=False, disable_numparse=True) + "\n\n"
            + _sparsity_note(decode, settings) + "\n")


def sparsity_latex(table: pd.DataFrame, splits: Sequence[str], decode: str,
                   settings: BootstrapSettings) -> str:
    """A full-width `table*` scaled to the text width: four columns per split fit no single column."""
    lead = ["Model", "Sparsity", "Params (M)", "MB"]
    per_split = ["Ind.", "Omni", r"$\Delta$\%", _tex(f"{_fmt_confidence(settings.confidence)} CI")]
    header_top = " & ".join([""] * len(lead) + [rf"\multicolumn{{{len(per_split)}}}{{c}}{{{_tex(split)}}}"
                                                for split in splits]) + r" \\"
    rules = " ".join(rf"\cmidrule(lr){{{len(lead) + 1 + i * len(per_split)}-{len(lead) + (i + 1) * len(per_split)}}}"
                     for i in range(len(splits)))
    header = " & ".join(lead + per_split * len(splits)) + r" \\"
    body = []
    previous_kind = None
    for i, row in zip(table.index, table.itertuples()):
        if previous_kind is not None and row.model != previous_kind:
            body.append(r"\midrule")
        previous_kind = row.model
        cells = [_tex(_row_label(row)), _fmt_sparsity(row.sparsity), _fmt_size(row.params_kept / MILLION),
                 _fmt_size(row.export_mb_fp32)]
        for split in splits:
            cells += [_tex(_fmt_wer(PERCENT * table.at[i, f"{split}/individual_wer"])),
                      _tex(_fmt_wer(PERCENT * table.at[i, f"{split}/omni_wer"])),
                      _tex_number(_fmt_rel(table.at[i, f"{split}/rel_diff_pct"])),
                      _tex_number(_fmt_ci(table, split, i))]
        body.append(" & ".join(cells) + r" \\")
    columns = "l" + "r" * (len(lead) - 1) + "rrrc" * len(splits)
    caption = _tex(_sparsity_note(decode, settings))
    return "\n".join([
        r"% requires \usepackage{booktabs} and \usepackage{graphicx}",
        r"\begin{table*}[t]", r"\centering",
        rf"\caption{{Omni-sparsity vs individually pruned models. {caption}}}",
        r"\label{tab:wer-vs-sparsity}",
        r"\resizebox{\textwidth}{!}{%",
        rf"\begin{{tabular}}{{{columns}}}", r"\toprule", header_top, rules, header, r"\midrule",
        *body, r"\bottomrule", r"\end{tabular}}", r"\end{table*}", "",
    ])


def _sparsity_note(decode: str, settings: BootstrapSettings) -> str:
    return (f"WER in %, decode {decode}. Rel. diff (%) = (omni - individual) / individual, negative = omni better; "
            f"{_fmt_confidence(settings.confidence)} paired bootstrap CI over utterances "
            f"({settings.resamples} resamples, seed {settings.seed}); {SIGNIFICANT_MARK} = CI excludes 0. "
            "Dense: the shared starting model (individual column). Searched (b): omni-searched per-layer "
            "sparsity under the size of uniform sparsity b, compared with the individual model at b.")


def _row_label(row) -> str:
    if row.model == "searched":
        return f"searched ({row.tag.removeprefix(BUDGET_PREFIX)})"
    return row.model


# ---------------------------------------------------------------- costs


def cost_frame(accounting: Accounting) -> pd.DataFrame:
    """Jobs, per-stage totals and headline lines in one CSV, told apart by `section`.

    Count columns are nullable integers, so blanks of the other sections do not turn them into floats.
    """
    frame = pd.concat([accounting.jobs.assign(section="job"),
                      accounting.totals.assign(section="total"),
                      accounting.headline.assign(section="headline")], ignore_index=True)[
        ["section", "stage", "item", "rule", "arm", "sparsity", "device", "device_count", "processes",
         "threads", "jobs", "models", "wall_s", "device_hours", "unit", "audio_hours", "peak_mem_mb",
         "source"]]
    counts = ["device_count", "processes", "threads", "jobs", "models"]
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
        sentence = (f"{unit}: K = {int(individual['models'])} individually pruned models cost "
                    f"{_fmt_hours(individual['device_hours'])} ({int(individual['jobs'])} jobs); omni "
                    f"(supernet + {int(omni['models'])} extractions) cost {_fmt_hours(omni['device_hours'])}")
        if RATIO_ITEM in part.index:
            sentence += f"; {RATIO_ITEM} = {part.at[RATIO_ITEM, 'device_hours']:.{RATIO_DECIMALS}f}x"
        lines.append(f"{sentence}. Dense training, shared by both: {_fmt_hours(dense['device_hours'])}.")
    return lines


def cost_markdown(accounting: Accounting) -> str:
    jobs = accounting.jobs
    job_view = pd.DataFrame({
        "stage": jobs["stage"], "rule": jobs["rule"], "arm": jobs["arm"].fillna(MISSING),
        "sparsity": jobs["sparsity"].map(_fmt_sparsity), "device": jobs["device"],
        "devices": jobs["device_count"], "processes": jobs["processes"],
        "threads": jobs["threads"].map(_fmt_int), "wall (s)": jobs["wall_s"].map(_fmt_wall),
        "device-hours": jobs["device_hours"].map(_fmt_hours), "unit": jobs["unit"],
        "audio hours": jobs["audio_hours"].map(_fmt_hours), "peak mem (MB)": jobs["peak_mem_mb"].map(_fmt_wall),
        "source": jobs["source"],
    })
    totals = accounting.totals
    total_view = pd.DataFrame({
        "stage": totals["stage"], "unit": totals["unit"], "jobs": totals["jobs"],
        "wall (s)": totals["wall_s"].map(_fmt_wall), "device-hours": totals["device_hours"].map(_fmt_hours),
        "audio hours": totals["audio_hours"].map(_fmt_hours),
        "max peak mem (MB)": totals["peak_mem_mb"].map(_fmt_wall),
    })
    check = accounting.crosscheck
    check_view = pd.DataFrame({
        "rule": check["rule"], "jobs (records)": check["record_jobs"],
        "wall (s), records": check["record_wall_s"].map(_fmt_wall),
        "runs (benchmarks)": check["benchmark_runs"],
        "wall (s), benchmarks": check["benchmark_wall_s"].map(_fmt_wall),
        "benchmark / record": check["benchmark_over_record"].map(lambda v: f"{v:.2f}"),
    })
    sections = [
        "## Cost of producing K pruned models", "",
        *[f"- {line}" for line in headline_sentences(accounting.headline)], "",
        "## Totals per stage", "", _markdown(total_view), "",
        "## Jobs", "",
        "Device-hours are GPU-hours on GPUs and CPU core-hours (wall x threads) on CPUs, never converted. "
        "Rows whose source is a benchmark file are rules without a cost record: their core-hours are the "
        "CPU time Snakemake measured.", "",
        _markdown(job_view), "",
        "## Cross-check with Snakemake benchmarks", "",
        "Benchmarks include interpreter start-up and I/O, and only a rerun's last segment of a resumed job.", "",
        _markdown(check_view) if not check_view.empty else "No rule has both a cost record and a benchmark.", "",
    ]
    return "\n".join(sections)


def cost_latex(accounting: Accounting) -> str:
    """Totals and headline (the paper's cost table), then every job (appendix material)."""
    totals_rows = [_tex_row([row.stage, row.unit, str(row.jobs), _fmt_wall(row.wall_s), _fmt_hours(row.device_hours)])
                   for row in accounting.totals.itertuples()]
    headline_rows = []
    for row in accounting.headline.itertuples():
        if row.item == RATIO_ITEM:
            headline_rows.append(_tex_row([row.item, row.unit, "", f"{row.wall_s:.{RATIO_DECIMALS}f}x",
                                           f"{row.device_hours:.{RATIO_DECIMALS}f}x"]))
        else:
            label = f"{row.item} ({int(row.models)} models)" if row.models else row.item
            headline_rows.append(_tex_row([label, row.unit, _fmt_int(row.jobs), _fmt_wall(row.wall_s),
                                           _fmt_hours(row.device_hours)]))
    job_rows = [_tex_row([row.rule, row.arm if isinstance(row.arm, str) else MISSING, _fmt_sparsity(row.sparsity),
                          row.device, _fmt_wall(row.wall_s), _fmt_hours(row.device_hours), row.unit])
                for row in accounting.jobs.itertuples()]
    return "\n".join([
        r"% requires \usepackage{booktabs}",
        r"\begin{table}[t]", r"\centering", r"\small",
        r"\caption{Measured training and evaluation cost. Device-hours are GPU-hours on GPUs and CPU "
        r"core-hours on CPUs, never converted.}",
        r"\label{tab:cost}",
        r"\begin{tabular}{llrrr}", r"\toprule",
        r"Stage & Unit & Jobs & Wall (s) & Device-hours \\", r"\midrule",
        *totals_rows, r"\midrule",
        r"\multicolumn{5}{l}{\emph{Producing K pruned models (dense shown apart: both arms start from it)}} \\",
        *headline_rows, r"\bottomrule", r"\end{tabular}", r"\end{table}", "",
        r"\begin{table*}[t]", r"\centering", r"\small",
        r"\caption{Every job of the study.}", r"\label{tab:cost-jobs}",
        r"\begin{tabular}{llrlrrl}", r"\toprule",
        r"Rule & Arm & Sparsity & Device & Wall (s) & Device-hours & Unit \\", r"\midrule",
        *job_rows, r"\bottomrule", r"\end{tabular}", r"\end{table*}", "",
    ])


# ---------------------------------------------------------------- writing


def write_wer_tables(summary_paths: Iterable[str | os.PathLike], splits: Sequence[str],
                     decodes: Sequence[str], table_decode: str, settings: BootstrapSettings,
                     outputs: dict[str, str | os.PathLike]) -> None:
    """outputs keys: wer_csv, wer_md, sparsity_csv, sparsity_md, sparsity_tex."""
    summaries = load_summaries(summary_paths)
    if not (summaries["decode"] == table_decode).any():
        raise ValueError(f"config key 'report.table_decode': no summary has decode {table_decode!r}; "
                         f"found {sorted(summaries['decode'].unique())}")
    table = wer_table(summaries, splits, decodes)
    write_dataframe(outputs["wer_csv"], table)
    write_text(outputs["wer_md"], wer_markdown(table))
    comparison = sparsity_table(summaries, splits, table_decode, settings)
    write_dataframe(outputs["sparsity_csv"], comparison)
    write_text(outputs["sparsity_md"], sparsity_markdown(comparison, splits, table_decode, settings))
    write_text(outputs["sparsity_tex"], sparsity_latex(comparison, splits, table_decode, settings))


def write_cost_tables(accounting: Accounting, outputs: dict[str, str | os.PathLike]) -> None:
    """outputs keys: csv, md, tex."""
    write_dataframe(outputs["csv"], cost_frame(accounting))
    write_text(outputs["md"], cost_markdown(accounting))
    write_text(outputs["tex"], cost_latex(accounting))


# ---------------------------------------------------------------- formatting


def _markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, disable_numparse=True)


def _budget_of(tag: str) -> float:
    return float(tag.removeprefix(BUDGET_PREFIX))


def _number_formatter(spec: str) -> Callable[[float], str]:
    """One cell format per quantity, so a column reads the same in every table; missing -> MISSING."""
    def format_cell(value: float) -> str:
        return MISSING if value is None or pd.isna(value) else format(value, spec)
    return format_cell


_fmt_wer = _number_formatter(f".{WER_DECIMALS}f")
_fmt_rel = _number_formatter(f"+.{REL_DECIMALS}f")
_fmt_sparsity = _number_formatter(f".{SPARSITY_DECIMALS}f")
_fmt_size = _number_formatter(f".{SIZE_DECIMALS}f")
_fmt_wall = _number_formatter(f".{WALL_DECIMALS}f")
_fmt_hours = _number_formatter(f".{HOURS_DIGITS}g")
_fmt_int = _number_formatter(".0f")


def _fmt_confidence(confidence: float) -> str:
    return f"{PERCENT * confidence:g}%"


def _fmt_ci(table: pd.DataFrame, split: str, index: int) -> str:
    low, high = table.at[index, f"{split}/rel_ci_low_pct"], table.at[index, f"{split}/rel_ci_high_pct"]
    if pd.isna(low) or pd.isna(high):
        return MISSING
    flag = table.at[index, f"{split}/excludes_zero"]
    mark = SIGNIFICANT_MARK if not pd.isna(flag) and bool(flag) else ""
    return f"[{_fmt_rel(low)}, {_fmt_rel(high)}]{mark}"


_TEX_SPECIAL = {MISSING: "--", "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(char, char) for char in str(text))


def _tex_row(cells: Sequence[str]) -> str:
    return " & ".join(_tex(cell) for cell in cells) + r" \\"


def _tex_number(text: str) -> str:
    """Signed numbers and the significance mark in math mode, so minus signs are real minus signs."""
    if text == MISSING:
        return _tex(text)
    mark = SIGNIFICANT_MARK if text.endswith(SIGNIFICANT_MARK) else ""
    body = text.removesuffix(mark)
    return f"${body}$" + (rf"$^{{{mark}}}$" if mark else "")
