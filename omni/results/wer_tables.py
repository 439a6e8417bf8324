"""WER tables: every WER measured, and the omni-vs-individual comparison per sparsity.

Each table is written as CSV (for machines, raw fractions), Markdown (for the README/report)
and LaTeX (booktabs via pandas' Styler, ready to paste). Everything is read from the
evaluation summaries and per-utterance TSVs, never from a model.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from omni.atomic import write_dataframe, write_text
from omni.results.accounting import ARMS
from omni.results.bootstrap import BootstrapSettings, PairedDifference, paired_bootstrap
from omni.results.formatting import (
    BYTES_PER_MB,
    MILLION,
    MISSING,
    PERCENT,
    SIGNIFICANT_MARK,
    TEX_MISSING,
    fmt_ci,
    fmt_confidence,
    fmt_rel,
    fmt_size,
    fmt_sparsity,
    fmt_wer,
    latex_table,
    markdown,
    tex,
    tex_number,
)
from omni.study import CONTROL

DENSE_TAG = "dense"
LEVEL_PREFIX = "s"    # tag of a uniform sparsity level, e.g. s0.7
BUDGET_PREFIX = "b"   # tag of a searched model under the size of uniform level, e.g. b0.7

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
    uniform_omni: tuple[str, str] | None = None   # searched rows: the uniform omni model of the budget's level


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
        "arm": table["arm"], "tag": table["tag"], "sparsity": table["sparsity"].map(fmt_sparsity),
        "params kept (M)": (table["params_kept"] / MILLION).map(fmt_size),
        "export fp32 (MB)": (table["export_bytes_fp32"] / BYTES_PER_MB).map(fmt_size),
        "export fp16 (MB)": (table["export_bytes_fp16"] / BYTES_PER_MB).map(fmt_size),
        "split": table["split"], "decode": table["decode"],
        "WER (%)": (PERCENT * table["wer"]).map(fmt_wer), "CER (%)": (PERCENT * table["cer"]).map(fmt_wer),
        "utterances": table["utterances"],
    })
    return shown.to_markdown(index=False, disable_numparse=True) + "\n"


def comparisons(summaries: pd.DataFrame) -> list[Comparison]:
    """Dense first, then uniform levels by sparsity, then searched models by budget.

    A searched model under the size budget of level s is compared with the individual model
    pruned to s, the model of the same size an individual-pruning study would have produced, and
    with the uniform omni model at s, which the search started from.
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
                               ("omni-searched", tag), ("omni", level_tag)))
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
            row.update(_damage_cells(scored, comparison, split, decode, settings))
            row.update(_versus_uniform_cells(scored, comparison, split, decode, settings))
        rows.append(row)
    return pd.DataFrame(rows)


def _versus_uniform_cells(scored: pd.DataFrame, comparison: Comparison, split: str, decode: str,
                          settings: BootstrapSettings) -> dict[str, object]:
    """Searched rows: searched - uniform omni at the same level (relative %, paired CI); did the search help?"""
    names = [f"{split}/uniform_omni_wer", f"{split}/vs_uniform_rel_pct", f"{split}/vs_uniform_ci_low_pct",
             f"{split}/vs_uniform_ci_high_pct", f"{split}/vs_uniform_excludes_zero"]
    searched = _lookup(scored, comparison.omni, split) if comparison.omni else None
    uniform = _lookup(scored, comparison.uniform_omni, split) if comparison.uniform_omni else None
    if searched is None or uniform is None:
        return dict.fromkeys(names, np.nan)
    difference = _paired(searched["eval_dir"], uniform["eval_dir"], decode, settings)
    return dict(zip(names, (uniform["wer"], difference.diff_rel_pct, *difference.ci_rel_pct,
                            difference.excludes_zero)))


def _damage_cells(scored: pd.DataFrame, comparison: Comparison, split: str, decode: str,
                  settings: BootstrapSettings) -> dict[str, object]:
    """WER - control WER (absolute, with its paired CI) of the row's individual and omni models.

    The control is the dense model trained as long as a pruning job without masks, so this is the
    damage pruning does net of the extra training. On the dense row the "individual" model is the
    dense one: dense - control says whether the dense job had converged."""
    control = _lookup(scored, CONTROL, split)
    cells: dict[str, object] = {f"{split}/control_wer": np.nan if control is None else control["wer"]}
    for side, model in (("individual", comparison.individual), ("omni", comparison.omni)):
        pruned = _lookup(scored, model, split) if model else None
        names = [f"{split}/{side}_damage", f"{split}/{side}_damage_ci_low", f"{split}/{side}_damage_ci_high",
                 f"{split}/{side}_damage_excludes_zero"]
        if control is None or pruned is None:
            cells.update(dict.fromkeys(names, np.nan))
            continue
        difference = _paired(pruned["eval_dir"], control["eval_dir"], decode, settings)
        cells.update(zip(names, (difference.diff_abs, *difference.ci_abs, difference.excludes_zero)))
    return cells


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
        "sparsity": table["sparsity"].map(fmt_sparsity),
        "params (M)": (table["params_kept"] / MILLION).map(fmt_size),
        "export fp32 (MB)": table["export_mb_fp32"].map(fmt_size),
    })
    confidence = fmt_confidence(settings.confidence)
    for split in splits:
        shown[f"{split} ind."] = (PERCENT * table[f"{split}/individual_wer"]).map(fmt_wer)
        shown[f"{split} omni"] = (PERCENT * table[f"{split}/omni_wer"]).map(fmt_wer)
        shown[f"{split} Δ rel."] = table[f"{split}/rel_diff_pct"].map(fmt_rel)
        shown[f"{split} {confidence} CI"] = [fmt_ci(table, split, i) for i in table.index]
    return (shown.to_markdown(index=False, disable_numparse=True) + "\n\n"
            + _sparsity_note(decode, settings) + "\n\n" + searched_markdown(table, splits, settings)
            + damage_markdown(table, splits, decode, settings))


def searched_markdown(table: pd.DataFrame, splits: Sequence[str], settings: BootstrapSettings) -> str:
    """The searched models against the uniform omni model they started from, at the same size."""
    searched = table[table["model"] == "searched"]
    if searched.empty:
        return ""
    confidence = fmt_confidence(settings.confidence)
    shown = pd.DataFrame({"model": [_row_label(row) for row in searched.itertuples()],
                          "sparsity": searched["sparsity"].map(fmt_sparsity)})
    for split in splits:
        shown[f"{split} uniform omni"] = (PERCENT * searched[f"{split}/uniform_omni_wer"]).map(fmt_wer)
        shown[f"{split} searched"] = (PERCENT * searched[f"{split}/omni_wer"]).map(fmt_wer)
        shown[f"{split} Δ rel. [{confidence} CI]"] = [_relative_text(searched, split, "vs_uniform", i)
                                                    for i in searched.index]
    return ("### Searched per-layer sparsity vs uniform omni at the same level\n\n" + markdown(shown)
            + "\n\nRel. diff (%) = (searched - uniform) / uniform, negative = the search helped; same paired "
              "bootstrap as above.\n\n")


def _relative_text(table: pd.DataFrame, split: str, prefix: str, index: int) -> str:
    value = table.at[index, f"{split}/{prefix}_rel_pct"]
    if pd.isna(value):
        return MISSING
    low, high = table.at[index, f"{split}/{prefix}_ci_low_pct"], table.at[index, f"{split}/{prefix}_ci_high_pct"]
    mark = SIGNIFICANT_MARK if bool(table.at[index, f"{split}/{prefix}_excludes_zero"]) else ""
    return f"{fmt_rel(value)} [{fmt_rel(low)}, {fmt_rel(high)}]{mark}"


def has_control(table: pd.DataFrame, splits: Sequence[str]) -> bool:
    return any(table[f"{split}/control_wer"].notna().any() for split in splits)


def damage_frame(table: pd.DataFrame, splits: Sequence[str], settings: BootstrapSettings) -> pd.DataFrame:
    """Display cells of the pruning damage against the dense-continued control (absolute WER points)."""
    confidence = fmt_confidence(settings.confidence)
    shown = pd.DataFrame({"model": [_row_label(row) for row in table.itertuples()],
                          "sparsity": table["sparsity"].map(fmt_sparsity)})
    for split in splits:
        shown[f"{split} control"] = (PERCENT * table[f"{split}/control_wer"]).map(fmt_wer)
        for side, label in (("individual", "ind."), ("omni", "omni")):
            shown[f"{split} {label} - control [{confidence} CI]"] = [
                _damage_text(table, split, side, i) for i in table.index]
    return shown


def damage_markdown(table: pd.DataFrame, splits: Sequence[str], decode: str, settings: BootstrapSettings) -> str:
    if not has_control(table, splits):
        return ""
    return ("### Pruning damage: WER - control WER\n\n" + markdown(damage_frame(table, splits, settings))
            + "\n\n" + _damage_note(decode, settings) + "\n")


def _damage_text(table: pd.DataFrame, split: str, side: str, index: int) -> str:
    value = table.at[index, f"{split}/{side}_damage"]
    if pd.isna(value):
        return MISSING
    low, high = table.at[index, f"{split}/{side}_damage_ci_low"], table.at[index, f"{split}/{side}_damage_ci_high"]
    mark = SIGNIFICANT_MARK if bool(table.at[index, f"{split}/{side}_damage_excludes_zero"]) else ""
    return f"{fmt_rel(PERCENT * value)} [{fmt_rel(PERCENT * low)}, {fmt_rel(PERCENT * high)}]{mark}"


def _damage_note(decode: str, settings: BootstrapSettings) -> str:
    return (f"WER points (absolute), decode {decode}. Control: the dense model trained as many steps as a "
            "pruning job, on the same batches and schedule, without masks (dense-continued). A pruned model's "
            "damage is its WER minus the control's: what pruning costs net of the extra training. On the dense "
            "row, dense - control says whether the dense job had converged (positive: more training still "
            f"helped). {fmt_confidence(settings.confidence)} paired bootstrap CI over utterances; "
            f"{SIGNIFICANT_MARK} = CI excludes 0.")


def sparsity_latex(table: pd.DataFrame, splits: Sequence[str], decode: str,
                   settings: BootstrapSettings) -> str:
    """A full-width `table*` scaled to the text width: four columns per split fit no single column."""
    lead = [("", "Model"), ("", "Sparsity"), ("", "Params (M)"), ("", "MB")]
    shown = pd.DataFrame({
        lead[0]: [_row_label(row) for row in table.itertuples()],
        lead[1]: table["sparsity"].map(fmt_sparsity),
        lead[2]: (table["params_kept"] / MILLION).map(fmt_size),
        lead[3]: table["export_mb_fp32"].map(fmt_size),
    })
    math_columns = []
    for split in splits:
        shown[(split, "Ind.")] = (PERCENT * table[f"{split}/individual_wer"]).map(fmt_wer)
        shown[(split, "Omni")] = (PERCENT * table[f"{split}/omni_wer"]).map(fmt_wer)
        shown[(split, r"$\Delta$\%")] = table[f"{split}/rel_diff_pct"].map(fmt_rel).map(tex_number)
        shown[(split, f"{fmt_confidence(settings.confidence)} CI".replace("%", r"\%"))] = [
            tex_number(fmt_ci(table, split, i)) for i in table.index]
        math_columns += list(shown.columns[-2:])
    shown.columns = pd.MultiIndex.from_tuples(shown.columns)
    shown = shown.replace(MISSING, TEX_MISSING)
    text_columns = [column for column in shown.columns if column not in math_columns]
    styler = (shown.style.hide(axis="index").format(escape="latex", subset=text_columns, na_rep="--")
              .format_index(escape="latex", axis=1, level=0))
    tabular = styler.to_latex(hrules=True, multicol_align="c", column_format="l" + "r" * (len(lead) - 1) + "rrrc" * len(splits))
    caption = tex(_sparsity_note(decode, settings))
    return "\n".join([
        r"% requires \usepackage{booktabs} and \usepackage{graphicx}",
        r"\begin{table*}[t]", r"\centering",
        rf"\caption{{Omni-sparsity vs individually pruned models. {caption}}}",
        r"\label{tab:wer-vs-sparsity}",
        r"\resizebox{\textwidth}{!}{%", tabular.rstrip("\n") + "}", r"\end{table*}", "",
        *([latex_table(damage_frame(table, splits, settings), "l" + "r" * (1 + 3 * len(splits)), "table*",
                       tex(f"Pruning damage: WER - control WER. {_damage_note(decode, settings)}"),
                       "tab:pruning-damage")] if has_control(table, splits) else []),
    ])


def _sparsity_note(decode: str, settings: BootstrapSettings) -> str:
    return (f"WER in %, decode {decode}. Rel. diff (%) = (omni - individual) / individual, negative = omni better; "
            f"{fmt_confidence(settings.confidence)} paired bootstrap CI over utterances "
            f"({settings.resamples} resamples, seed {settings.seed}); {SIGNIFICANT_MARK} = CI excludes 0. "
            "Dense: the shared starting model (individual column). Searched (b): omni-searched per-layer "
            "sparsity under the size of uniform sparsity b, compared with the individual model at b.")


def _row_label(row) -> str:
    if row.model == "searched":
        return f"searched ({row.tag.removeprefix(BUDGET_PREFIX)})"
    return row.model


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


def _budget_of(tag: str) -> float:
    return float(tag.removeprefix(BUDGET_PREFIX))
