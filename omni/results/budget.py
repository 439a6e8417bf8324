"""The budget curve: how the supernet's gap to the individual arm moves as it trains longer, where it breaks
even, and what it saves there.

Every budget multiple is its own arm (omni.job_params.budget_multiples: `omni-x2` is the study's own supernet
at twice one individual job's training passes, `individual-x0.5` each individual job at half its steps), all
from the one dense model with the same training seeds, so each comparison below is paired by seed:

- omni(m) - individual(1x): the question a user with K devices asks (is one longer supernet as good as K
  normal pruning jobs?);
- individual(m) - individual(1x): the individual arm's own curve (how much longer training helps anyone);
- omni(m) - individual(m) for m in both lists (the diagonal): "omni needs more passes" told apart from
  "everyone needs more passes".

Per level and pooled over the levels (as the primary endpoint pools them), relative differences with the
two-level intervals of omni.results.bootstrap.

The break-even multiple m*: where omni(m) - individual(1x) reaches zero, by linear interpolation of the gap
against log2(m) between the two measured multiples around the first crossing (the gap is roughly linear in
log budget over a factor of two, and a multiple is a ratio); its range: the same crossing for the interval's
lower bound (the earliest budget at which parity is not rejected) and upper bound (the budget from which
omni is no worse, at the tables' confidence). A crossing outside the measured multiples is not extrapolated:
it is reported as below the smallest or beyond the largest. The smallest MEASURED multiple whose interval
reaches zero is given beside it. Savings at m*: K / m* of the pruning phase (K individual jobs against one
supernet of m* jobs' compute) and (D + K) / (D + m*) end to end, D the dense job in units of one individual
job, from the cost records.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from omni.data.voices import Voices
from omni.atomic import write_dataframe, write_text  # noqa: E402
from omni.results.accounting import load_cost_records  # noqa: E402
from omni.results.bootstrap import BootstrapSettings, PairedDifference  # noqa: E402
from omni.results.figures import PANEL_INCHES, save  # noqa: E402
from omni.results.primary import PRIMARY_SPLIT, pooled_difference  # noqa: E402
from omni.arms import is_level_tag, tag_level  # noqa: E402
from omni.results.wer_tables import RunIndex, compare_runs, load_summaries, seed_list  # noqa: E402
from omni.job_names import TRAIN_DENSE, TRAIN_INDIVIDUAL

POOLED = "pooled"   # the `level` of rows pooled over the levels
GAP = "omni(m) - individual(1x)"
INDIVIDUAL_CURVE = "individual(m) - individual(1x)"
DIAGONAL = "omni(m) - individual(m)"
CURVE_COLUMNS = ("split", "level", "comparison", "multiple", "system_arm", "baseline_arm", "system_wer",
                 "baseline_wer", "abs_diff", "rel_diff_pct", "rel_ci_low_pct", "rel_ci_high_pct", "seed_rel_diffs_pct",
                 "ci_dof")
# m_star*: the crossing's multiple, NaN where it lies outside the measured ones; *_text: as read ("1.41x",
# "<= 1x", "> 4x").
BREAK_EVEN_COLUMNS = ("split", "level", "m_star", "m_star_text", "m_star_low", "m_star_low_text", "m_star_high",
                      "m_star_high_text", "smallest_measured_parity",
                      "levels", "dense_job_units", "training_saving", "training_saving_low", "training_saving_high",
                      "end_to_end_saving")


@dataclass(frozen=True)
class Crossing:
    """Where a curve over log2(multiple) reaches zero: `value`, or beyond the measured range (`side`
    'below' the smallest or 'above' the largest multiple; then `value` is that multiple)."""

    value: float
    side: str = "at"

    @property
    def inside(self) -> float:
        """The crossing's multiple, NaN when it lies outside the measured multiples."""
        return self.value if self.side == "at" else math.nan

    def text(self) -> str:
        return {"at": f"{self.value:.2f}x", "below": f"<= {self.value:g}x", "above": f"> {self.value:g}x"}[self.side]


def crossing(multiples: Sequence[float], values: Sequence[float]) -> Crossing:
    """The first multiple at which `values` (decreasing in budget, one per multiple) reaches zero,
    interpolated linearly in log2(multiple) between the bracketing measured multiples."""
    order = np.argsort(multiples)
    x, y = np.log2(np.asarray(multiples, dtype=float)[order]), np.asarray(values, dtype=float)[order]
    if y[0] <= 0:
        return Crossing(float(2 ** x[0]), "below")
    for i in range(1, len(x)):
        if y[i] <= 0:
            fraction = y[i - 1] / (y[i - 1] - y[i])
            return Crossing(float(2 ** (x[i - 1] + fraction * (x[i] - x[i - 1]))))
    return Crossing(float(2 ** x[-1]), "above")


def _difference(index: RunIndex, system: str, baseline: str, tags: Sequence[str], split: str,
                settings: BootstrapSettings) -> PairedDifference | None:
    """system - baseline pooled over `tags` (one tag: that level alone); None when a side lacks a level."""
    found = [(index.get((system, tag), split), index.get((baseline, tag), split)) for tag in tags]
    pairs = [(s, b) for s, b in found if s is not None and b is not None]
    if not pairs or len(pairs) < len(found):
        return None
    if len(pairs) == 1:
        return compare_runs(pairs[0][0], pairs[0][1], settings)
    return pooled_difference(pairs, settings)


def curve_table(summaries: pd.DataFrame, splits: Sequence[str], decode: str, settings: BootstrapSettings,
                omni_arms: Mapping[float, str], individual_arms: Mapping[float, str],
                voices: Voices | None = None) -> pd.DataFrame:
    """CURVE_COLUMNS rows: per split, level (and pooled) and multiple, the three comparisons."""
    index = RunIndex(summaries, decode, voices)
    tags = sorted({tag for arm, tag in zip(summaries["arm"], summaries["tag"])
                   if arm == individual_arms[1] and is_level_tag(tag)}, key=lambda tag: float(tag_level(tag)))
    comparisons = [*((GAP, m, arm, individual_arms[1]) for m, arm in sorted(omni_arms.items())),
                   *((INDIVIDUAL_CURVE, m, arm, individual_arms[1]) for m, arm in sorted(individual_arms.items())),
                   *((DIAGONAL, m, arm, individual_arms[m]) for m, arm in sorted(omni_arms.items())
                     if m in individual_arms)]
    rows = []
    for split in splits:
        for level, level_tags in [*((tag_level(tag), [tag]) for tag in tags), (POOLED, tags)]:
            for comparison, multiple, system, baseline in comparisons:
                found = _difference(index, system, baseline, level_tags, split, settings)
                if found is None:
                    continue
                rows.append({"split": split, "level": level, "comparison": comparison, "multiple": multiple,
                             "system_arm": system, "baseline_arm": baseline, "system_wer": found.wer_system,
                             "baseline_wer": found.wer_baseline, "abs_diff": found.diff_abs,
                             "rel_diff_pct": found.diff_rel_pct, "rel_ci_low_pct": found.ci_rel_pct[0],
                             "rel_ci_high_pct": found.ci_rel_pct[1],
                             "seed_rel_diffs_pct": seed_list(found.seed_diffs_rel_pct),
                             "ci_dof": found.degrees_of_freedom})
    return pd.DataFrame(rows, columns=list(CURVE_COLUMNS))


def dense_job_units(records: pd.DataFrame) -> float:
    """D: the dense job's device-hours over one individual(1x) job's (mean over its jobs), measured."""
    dense = records.loc[records["rule"] == TRAIN_DENSE, "device_hours"]
    individual = records.loc[(records["rule"] == TRAIN_INDIVIDUAL) & (records["arm"] == "individual"),
                             "device_hours"]
    if dense.empty or individual.empty:
        return math.nan
    return float(dense.mean() / individual.mean())


def break_even_table(curves: pd.DataFrame, levels: int, dense_units: float) -> pd.DataFrame:
    """BREAK_EVEN_COLUMNS rows: per split and level (and pooled), m* and its range, the savings."""
    rows = []
    for (split, level), rows_of in curves[curves["comparison"] == GAP].groupby(["split", "level"], sort=False):
        multiples = rows_of["multiple"].to_numpy()
        point, low, high = (crossing(multiples, rows_of[column].to_numpy())
                            for column in ("rel_diff_pct", "rel_ci_low_pct", "rel_ci_high_pct"))
        reaching = rows_of.loc[rows_of["rel_ci_low_pct"] <= 0, "multiple"]
        crossings = {"m_star": point, "m_star_low": low, "m_star_high": high}
        rows.append({"split": split, "level": level, **{name: found.inside for name, found in crossings.items()},
                     **{f"{name}_text": found.text() for name, found in crossings.items()},
                     "smallest_measured_parity": f"{reaching.min():g}x" if not reaching.empty else "none",
                     "levels": levels, "dense_job_units": dense_units, "training_saving": levels / point.inside,
                     "training_saving_low": levels / high.inside, "training_saving_high": levels / low.inside,
                     "end_to_end_saving": (dense_units + levels) / (dense_units + point.inside)})
    return pd.DataFrame(rows, columns=list(BREAK_EVEN_COLUMNS))


def budget_markdown(curves: pd.DataFrame, break_even: pd.DataFrame, decode: str,
                    settings: BootstrapSettings) -> str:
    confidence = f"{100 * settings.confidence:g} %"
    lines = ["### Budget curve and break-even multiple", ""]
    for split in curves["split"].unique():
        role = "primary split" if split == PRIMARY_SPLIT else "secondary"
        lines += [f"#### {split} ({role})", "",
                  f"| level | comparison | m | rel. diff. % [{confidence} CI] | abs. (WER points) | per seed % |",
                  "|---|---|---|---|---|---|"]
        for row in curves[curves["split"] == split].itertuples():
            lines.append(f"| {row.level} | {row.comparison} | {row.multiple:g} | {row.rel_diff_pct:+.1f} "
                         f"[{row.rel_ci_low_pct:+.1f}, {row.rel_ci_high_pct:+.1f}] | {100 * row.abs_diff:+.2f} | "
                         f"{row.seed_rel_diffs_pct.replace(';', ', ') if row.seed_rel_diffs_pct else ''} |")
        lines += ["", "| level | m* | m* range | smallest measured m reaching 0 | saving K / m* (range) | "
                  "end to end (D + K) / (D + m*) |", "|---|---|---|---|---|---|"]
        for row in break_even[break_even["split"] == split].itertuples():
            lines.append(f"| {row.level} | {row.m_star_text} | [{row.m_star_low_text}, {row.m_star_high_text}] | "
                         f"{row.smallest_measured_parity} | {_fmt(row.training_saving)} "
                         f"[{_fmt(row.training_saving_low)}, {_fmt(row.training_saving_high)}] | "
                         f"{_fmt(row.end_to_end_saving)} |")
        lines.append("")
    first = break_even.iloc[0] if not break_even.empty else None
    dense = f"D = {first.dense_job_units:.2f} individual jobs (measured), K = {first.levels}" if first is not None \
        else "no break-even rows"
    lines += [f"Decode {decode}. m: budget multiple (omni: of one individual job's training passes; individual: of "
              "its steps). m*: where omni(m) - individual(1x) reaches 0, interpolated linearly in log2(m) between "
              "the measured multiples around the crossing; its range: the same crossing of the interval's lower "
              "and upper bounds; '<= m' / '> m': outside the measured multiples (not extrapolated). Savings at m*: "
              f"{dense}. Intervals: seeds (t-based) and test data, as in every table; they do not cover the one "
              "dense model, the one corpus and one machine's rounding.", ""]
    return "\n".join(lines) + "\n"


def _fmt(value: float) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.2f}x"


def budget_figure(curves: pd.DataFrame, break_even: pd.DataFrame, path: str | os.PathLike) -> None:
    """Per level and pooled (the primary split): omni(m) - individual(1x) and individual(m) - individual(1x)
    against the multiple on a log axis, with their intervals, zero and m* marked."""
    on_split = curves[curves["split"] == PRIMARY_SPLIT]
    if on_split.empty:
        on_split = curves[curves["split"] == curves["split"].iloc[0]]
    split = on_split["split"].iloc[0]
    levels = list(dict.fromkeys(on_split["level"]))
    figure, axes = plt.subplots(1, len(levels), figsize=(PANEL_INCHES[0] * len(levels), PANEL_INCHES[1]),
                                squeeze=False, sharey=True)
    styles = {GAP: dict(color="tab:red", marker="s", label="omni(m) - individual(1x)"),
              INDIVIDUAL_CURVE: dict(color="tab:blue", marker="o", label="individual(m) - individual(1x)")}
    for axis, level in zip(axes[0], levels):
        for comparison, style in styles.items():
            rows = on_split[(on_split["level"] == level) & (on_split["comparison"] == comparison)]
            if rows.empty:
                continue
            y = rows["rel_diff_pct"].to_numpy()
            errors = np.vstack([y - rows["rel_ci_low_pct"].to_numpy(), rows["rel_ci_high_pct"].to_numpy() - y])
            axis.errorbar(rows["multiple"], y, yerr=errors, capsize=3, linestyle="-", **style)
        axis.axhline(0.0, color="black", linewidth=0.8)
        marked = break_even[(break_even["split"] == split) & (break_even["level"] == level)]
        if not marked.empty and np.isfinite(marked["m_star"].iloc[0]):
            m_star = marked["m_star"].iloc[0]
            axis.axvline(m_star, color="tab:red", linestyle=":", linewidth=1)
            axis.annotate(f"m* = {m_star:.2f}x", (m_star, 0), textcoords="offset points", xytext=(4, 6), fontsize=8)
        axis.set_xscale("log", base=2)
        measured = sorted(on_split.loc[on_split["level"] == level, "multiple"].unique())
        axis.set_xticks(measured, [f"{m:g}x" for m in measured])
        axis.set_title(f"level {level}" if level != POOLED else "pooled over levels")
        axis.set_xlabel("budget multiple m (log scale)")
    axes[0][0].set_ylabel(f"relative WER difference, % ({split})")
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    save(figure, path)


def write_budget(summary_paths: Sequence[str], cost_paths: Sequence[str], results_dir: str, splits: Sequence[str],
                 decode: str, settings: BootstrapSettings, omni_arms: Mapping[float, str],
                 individual_arms: Mapping[float, str], levels: int, outputs: Mapping[str, str | os.PathLike],
                 voices: Voices | None = None) -> None:
    """tables/budget.csv (the curves), budget_break_even.csv, budget.md and figures/budget.png."""
    curves = curve_table(load_summaries(summary_paths), splits, decode, settings, omni_arms, individual_arms, voices)
    break_even = break_even_table(curves, levels, dense_job_units(load_cost_records(cost_paths, results_dir)))
    write_dataframe(outputs["csv"], curves)
    write_dataframe(outputs["break_even_csv"], break_even)
    write_text(outputs["md"], budget_markdown(curves, break_even, decode, settings))
    budget_figure(curves, break_even, outputs["png"])
