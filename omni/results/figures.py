"""Figures of the study: WER vs size (the Pareto picture), training curves, cost per arm.

Agg backend: figures are written on headless nodes. Inputs are the same files the tables read,
so a figure never shows a number the tables do not.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from omni.data.voices import Voices
from omni.results.accounting import breakdown  # noqa: E402
from omni.atomic import atomic_path  # noqa: E402
from omni.results.bootstrap import BootstrapSettings, wer_interval  # noqa: E402
from omni.results.formatting import BYTES_PER_MB, MILLION, PERCENT  # noqa: E402
from omni.arms import SEARCHED_SUFFIX, arm_kind, arm_order  # noqa: E402
from omni.results.wer_tables import load_runs, resampling_clusters  # noqa: E402
from omni.study import CONTROL  # noqa: E402

DPI = 150
PANEL_INCHES = (5.0, 4.0)
ARM_STYLE: dict[str, dict[str, object]] = {
    "dense": dict(color="black", marker="*", markersize=12, linestyle="none", label="dense"),
    "individual": dict(color="tab:blue", marker="o", linestyle="-", label="individually pruned"),
    "omni": dict(color="tab:red", marker="s", linestyle="-", label="omni (extracted, no fine-tuning)"),
    "omni-searched": dict(color="tab:green", marker="^", markersize=8, linestyle="none",
                          label="omni, searched per-layer sparsity"),
}
ACTIVITY_COLORS = {"data": "tab:gray", "training": "tab:blue", "extraction": "tab:orange",
                   "search": "tab:green", "evaluation": "tab:purple", "export": "tab:olive",
                   "other": "tab:brown"}
# Variant arms (config `variants`) get the next colour of this cycle; their kind keeps its marker.
VARIANT_COLORS = ("tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray",
                  "gold", "navy", "teal")
KIND_MARKERS = {"individual": "o", "omni": "s", "searched": "^"}
# A smoothed training curve keeps about this many independent points, however long the run.
SMOOTHED_POINTS = 60
COLORMAP_STOP = 0.9       # viridis beyond this is too pale to read on white
TIME_UNITS = ((3600.0, "hours"), (60.0, "minutes"), (1.0, "seconds"))
ANNOTATION_FONTSIZE = 7
LEGEND_FONTSIZE = 8
# Level labels sit in the top LABEL_PAD of a panel; the data keep clear of them by LABEL_HEADROOM.
LABEL_PAD = 0.02
LABEL_HEADROOM = 0.25
LABEL_SIDE_ROOM = 0.1     # x margin so the outermost labels stay inside the panel
BAR_INCHES = 0.5          # height per bar of the cost figure
COST_MARGIN_INCHES = 1.2  # axis label, title and legend of the cost figure
TOTAL_HEADROOM = 1.15     # x range beyond the longest bar, for its total label


def save(figure: Figure, path: str | os.PathLike) -> None:
    """Atomic PNG: a killed job leaves no half-written figure that looks finished."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)


LEGEND_COLUMNS = 4
SEED_ALPHA = 0.3
SEED_MARKER = 4
CONTROL_STYLE = dict(color="dimgray", linestyle="--", linewidth=1, label="control (dense trained on, no masks)")


# ---------------------------------------------------------------- WER vs size


def pareto_figure(summaries: pd.DataFrame, splits: Sequence[str], decode: str,
                  settings: BootstrapSettings, voices: Voices | None = None) -> Figure:
    """One panel per split: WER (%) vs kept parameters. A marker is an arm's mean over its training
    seeds, its error bar the two-level CI of that mean (seeds t-based x test data bootstrapped, as in the
    tables); faint dots are the single seeds. The control is a dashed line at its seed mean.

    Uniform levels are annotated with their sparsity and compact export size (MB), which is not
    a linear function of kept parameters (sparse indices), hence labels rather than a second axis.
    """
    scored = summaries[summaries["decode"] == decode]
    present = [split for split in splits if (scored["split"] == split).any()]
    figure, axes = plt.subplots(1, len(present), figsize=(PANEL_INCHES[0] * len(present), PANEL_INCHES[1]),
                                squeeze=False)
    for axis, split in zip(axes[0], present):
        on_split = scored[scored["split"] == split]
        for arm, style in arm_styles(scored["arm"].unique()).items():
            runs = on_split[on_split["arm"] == arm]
            if runs.empty:
                continue
            means = runs.groupby("tag").agg(params_kept=("params_kept", "mean"), wer=("wer", "mean"))
            means = means.sort_values("params_kept")
            bounds = np.array([_mean_interval(runs[runs["tag"] == tag], decode, settings, voices)
                               for tag in means.index]) * PERCENT
            wer = PERCENT * means["wer"].to_numpy()
            axis.errorbar(means["params_kept"] / MILLION, wer, yerr=[wer - bounds[:, 0], bounds[:, 1] - wer],
                          capsize=3, **style)
            if runs["seed"].nunique() > 1:
                axis.plot(runs["params_kept"] / MILLION, PERCENT * runs["wer"], linestyle="none",
                          marker=style["marker"], color=style["color"], alpha=SEED_ALPHA, markersize=SEED_MARKER)
        control = on_split[on_split["arm"] == CONTROL[0]]
        if not control.empty:  # same size as dense: a level line, not a point on top of dense
            axis.axhline(PERCENT * control["wer"].mean(), **CONTROL_STYLE)
        _annotate_levels(axis, on_split)
        axis.set_title(split)
        axis.set_xlabel("kept parameters (millions)")
        axis.set_ylabel(f"WER (%), {decode}")
        axis.grid(True, alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), LEGEND_COLUMNS), frameon=False,
                  bbox_to_anchor=(0.5, -0.02 * math.ceil(len(labels) / LEGEND_COLUMNS)))
    seeds = scored.loc[scored["arm"] != "dense", "seed"].nunique()
    figure.suptitle(f"WER vs model size: mean over {seeds} training seed(s) (faint: single seeds); error bars: "
                    f"{PERCENT * settings.confidence:g}% bootstrap CI over seeds and test data "
                    f"({settings.resamples} resamples)")
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    return figure


def arm_styles(arms: Iterable[str]) -> dict[str, dict[str, object]]:
    """A plot style per arm, in table order (dense, individual arms, omni arms, searched arms): the
    study's own arms keep their fixed styles, each variant the next colour with its kind's marker."""
    ordered = sorted(set(arms) - {CONTROL[0]}, key=arm_order)
    colors = iter(VARIANT_COLORS * len(ordered))
    styles: dict[str, dict[str, object]] = {}
    for arm in ordered:
        if arm in ARM_STYLE:
            styles[arm] = ARM_STYLE[arm]
            continue
        kind = arm_kind(arm)
        styles[arm] = dict(color=next(colors), marker="D" if kind is None else KIND_MARKERS.get(kind, "D"),
                           linestyle="none" if kind == "searched" else "--", label=arm)
    return styles


def _mean_interval(runs: pd.DataFrame, decode: str, settings: BootstrapSettings,
                   voices: Voices | None) -> tuple[float, float]:
    """Two-level CI of one model's seed-mean WER on one split."""
    loaded = load_runs(runs, decode, voices)
    return wer_interval(loaded.errors, loaded.ref_words, settings, resampling_clusters(loaded, settings))


def _annotate_levels(axis: plt.Axes, on_split: pd.DataFrame) -> None:
    """Sparsity and export MB of the dense model and each uniform level, along the panel's top
    edge with a faint guide line, so labels never sit on the curves or their error bars."""
    axis.margins(x=LABEL_SIDE_ROOM, y=LABEL_HEADROOM)
    axis.set_ylim(bottom=0.0)
    levels = on_split[~on_split["arm"].str.endswith(SEARCHED_SUFFIX) & (on_split["arm"] != CONTROL[0])]
    levels = levels.drop_duplicates("tag")
    for level in levels.itertuples():
        x = level.params_kept / MILLION
        axis.axvline(x, color="lightgray", linestyle=":", linewidth=1, zorder=0)
        axis.text(x, 1.0 - LABEL_PAD, f"s={level.sparsity:g}\n{level.export_bytes_fp32 / BYTES_PER_MB:.1f} MB",
                  transform=axis.get_xaxis_transform(), ha="center", va="top", fontsize=ANNOTATION_FONTSIZE,
                  color="dimgray")


# ---------------------------------------------------------------- training curves


def training_curves_figure(log_paths: Sequence[str | os.PathLike], labels: Sequence[str]) -> Figure:
    """Loss vs step and vs wall time for every training job (smoothed; log scale); `labels` name each log's
    model (omni.study.Study.train_log_labels): the seeds of one model share its colour and legend entry."""
    runs = [(label, pd.read_csv(path)) for path, label in zip(log_paths, labels, strict=True)]
    time_divisor, time_unit = _time_unit(max((log["wall_s"].max() for _, log in runs if not log.empty),
                                             default=0.0))
    figure, (by_step, by_time) = plt.subplots(1, 2, figsize=(2 * PANEL_INCHES[0], PANEL_INCHES[1]))
    individual_colors = _individual_colors(sorted({label for label, _ in runs}))
    labelled = set()
    for label, log in runs:
        if log.empty:
            continue
        loss = log["loss"].rolling(max(1, len(log) // SMOOTHED_POINTS), min_periods=1).mean()
        style = _run_style(label, individual_colors)
        by_step.plot(log["step"], loss, label=None if label in labelled else label, **style)
        labelled.add(label)
        by_time.plot(log["wall_s"] / time_divisor, loss, **style)
    for axis, xlabel in ((by_step, "training step (of this job)"), (by_time, f"wall time ({time_unit})")):
        axis.set_yscale("log")
        axis.set_xlabel(xlabel)
        axis.set_ylabel("RNN-T loss (smoothed)")
        axis.grid(True, which="both", alpha=0.3)
    figure.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    figure.suptitle("Training loss: dense, control, each individual job, omni supernet (every training seed)")
    figure.tight_layout()
    return figure


def _individual_colors(labels: Sequence[str]) -> dict[str, tuple[float, ...]]:
    individual = sorted(label for label in labels if label.startswith("individual"))
    colormap = plt.get_cmap("viridis")
    return {label: colormap(COLORMAP_STOP * rank / max(1, len(individual) - 1))
            for rank, label in enumerate(individual)}


def _run_style(label: str, individual_colors: dict[str, tuple[float, ...]]) -> dict[str, object]:
    if label in individual_colors:
        return {"color": individual_colors[label], "linewidth": 1.2}
    if label.startswith("omni"):
        return {"color": ARM_STYLE["omni"]["color"], "linewidth": 2.0}
    if label.startswith(CONTROL[0]):
        return {"color": CONTROL_STYLE["color"], "linestyle": "--", "linewidth": 1.2}
    return {"color": ARM_STYLE["dense"]["color"], "linewidth": 1.5}


def _time_unit(max_seconds: float) -> tuple[float, str]:
    """The largest unit in which the longest run lasts at least one."""
    for divisor, unit in TIME_UNITS:
        if max_seconds >= divisor:
            return divisor, unit
    return TIME_UNITS[-1]


# ---------------------------------------------------------------- cost


def cost_figure(jobs: pd.DataFrame) -> Figure:
    """Device-hours per arm stacked by activity; one panel per unit (GPU-hours never mix with CPU)."""
    parts = breakdown(jobs).fillna({"device_hours": 0.0})
    units = sorted(parts["unit"].unique())
    arms_of = {unit: sorted(parts.loc[parts["unit"] == unit, "arm"].unique(),
                            key=lambda arm: (arm != "shared", arm != CONTROL[0], arm_order(arm)))
               for unit in units}
    bars = sum(len(arms) for arms in arms_of.values())
    figure, axes = plt.subplots(len(units), 1, squeeze=False,
                                figsize=(2 * PANEL_INCHES[0], COST_MARGIN_INCHES * len(units) + BAR_INCHES * bars),
                                gridspec_kw={"height_ratios": [len(arms_of[unit]) for unit in units]})
    for axis, unit in zip(axes[:, 0], units):
        table = (parts[parts["unit"] == unit]
                 .pivot_table(index="arm", columns="activity", values="device_hours", aggfunc="sum", fill_value=0.0)
                 .reindex(arms_of[unit]))
        left = np.zeros(len(table))
        for activity, color in ACTIVITY_COLORS.items():
            if activity in table:
                axis.barh(table.index, table[activity], left=left, color=color, label=activity)
                left += table[activity].to_numpy()
        for position, total in enumerate(left):
            axis.annotate(f" {total:.3g}", (total, position), va="center", fontsize=LEGEND_FONTSIZE)
        axis.invert_yaxis()
        axis.set_xlim(0, TOTAL_HEADROOM * left.max() if left.max() > 0 else 1.0)
        axis.set_xlabel(unit)
        axis.grid(True, axis="x", alpha=0.3)
    legend = {label: handle for axis in axes[:, 0] for handle, label in zip(*axis.get_legend_handles_labels())}
    figure.legend(legend.values(), legend.keys(), loc="upper center", ncol=len(legend), frameon=False,
                  fontsize=LEGEND_FONTSIZE, bbox_to_anchor=(0.5, 0.0))
    axes[0, 0].set_title("Measured cost per arm, all training seeds, stacked by activity (shared = data + dense model)")
    figure.tight_layout()
    return figure
