"""How numbers and text look in every table and figure: one format per quantity, so a column
reads the same in the CSV's Markdown twin, the LaTeX table and a figure's labels."""
from __future__ import annotations

from typing import Callable

import pandas as pd

PERCENT = 100.0
MILLION = 1e6
BYTES_PER_MB = 1e6
SIGNIFICANT_MARK = "*"
MISSING = "–"
TEX_MISSING = "--"
# Display precision (CSV keeps full precision).
WER_DECIMALS = 2
REL_DECIMALS = 1
RATIO_DECIMALS = 2
SPARSITY_DECIMALS = 3
SIZE_DECIMALS = 2
WALL_DECIMALS = 0
HOURS_DIGITS = 4      # significant digits: core-hours of a tiny CPU job and GPU-days both read well


def markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, disable_numparse=True)


def number_formatter(spec: str) -> Callable[[float], str]:
    """One cell format per quantity, so a column reads the same in every table; missing -> MISSING."""
    def format_cell(value: float) -> str:
        return MISSING if value is None or pd.isna(value) else format(value, spec)
    return format_cell


fmt_wer = number_formatter(f".{WER_DECIMALS}f")
fmt_rel = number_formatter(f"+.{REL_DECIMALS}f")
fmt_sparsity = number_formatter(f".{SPARSITY_DECIMALS}f")
fmt_size = number_formatter(f".{SIZE_DECIMALS}f")
fmt_wall = number_formatter(f".{WALL_DECIMALS}f")
fmt_hours = number_formatter(f".{HOURS_DIGITS}g")
fmt_int = number_formatter(".0f")


def fmt_confidence(confidence: float) -> str:
    return f"{PERCENT * confidence:g}%"


def fmt_mean_sd(mean: float, sd: float) -> str:
    """`23.41 ± 1.02`: a mean over training seeds and their spread; the mean alone for one seed."""
    if pd.isna(mean):
        return MISSING
    return fmt_wer(mean) if pd.isna(sd) else f"{fmt_wer(mean)} ± {fmt_wer(sd)}"


# A difference's columns (value, interval low, interval high) and display scale, by measure: relative
# (%, as stored) or absolute (stored as a WER fraction, shown in points).
DIFFERENCE_COLUMNS = {"rel": (("rel_diff_pct", "rel_ci_low_pct", "rel_ci_high_pct"), 1.0),
                      "abs": (("abs_diff", "abs_ci_low", "abs_ci_high"), PERCENT)}


def fmt_ci(table: pd.DataFrame, prefix: str, index: int, measure: str = "rel") -> str:
    """`[-0.3, +2.8]*`: the interval of the difference whose columns start with `prefix` (e.g. `dev/`)."""
    (_, low_column, high_column), scale = DIFFERENCE_COLUMNS[measure]
    low, high = table.at[index, f"{prefix}{low_column}"], table.at[index, f"{prefix}{high_column}"]
    if pd.isna(low) or pd.isna(high):
        return MISSING
    flag = table.at[index, f"{prefix}excludes_zero"]
    mark = SIGNIFICANT_MARK if not pd.isna(flag) and bool(flag) else ""
    return f"[{fmt_rel(scale * low)}, {fmt_rel(scale * high)}]{mark}"


# Table cells are escaped by pandas' Styler; this covers the captions we write ourselves (pandas has
# no public escape function) and the missing-value mark.
_CAPTION_SPECIAL = {MISSING: TEX_MISSING, "%": r"\%", "_": r"\_", "&": r"\&", "#": r"\#", "$": r"\$"}


def tex(text: str) -> str:
    return "".join(_CAPTION_SPECIAL.get(char, char) for char in str(text))


def tex_number(text: str) -> str:
    """Signed numbers and the significance mark in math mode, so minus signs are real minus signs."""
    if text == MISSING:
        return tex(text)
    mark = SIGNIFICANT_MARK if text.endswith(SIGNIFICANT_MARK) else ""
    body = text.removesuffix(mark).replace("±", r"\pm")
    return f"${body}$" + (rf"$^{{{mark}}}$" if mark else "")


def latex_table(frame: pd.DataFrame, column_format: str, environment: str, caption: str, label: str) -> str:
    """Plain text cells, escaped for LaTeX by pandas' Styler; booktabs rules."""
    styler = (frame.replace(MISSING, TEX_MISSING).style.hide(axis="index").format(escape="latex")
              .format_index(escape="latex", axis=1))
    return styler.to_latex(hrules=True, column_format=column_format, environment=environment, position="t",
                           position_float="centering", caption=caption, label=label)
