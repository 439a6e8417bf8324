"""Why a supernet level differs from its individual job, read from what both jobs wrote.

Per omni arm, training seed and level, against the individual job of the paired arm and the same seed
(which trained on the same batches, step for step):
- the training-loss gap: each pass of the supernet at the level's sparsity minus the individual job's
  loss at the same step, smoothed over passes, its mean over the last third of training and its
  slope there (still closing, or settled?);
- mask churn: per re-ranking, the share of the level's final mask that moved (train_log.csv), and the
  IoU of the extracted mask with the individual job's mask (do the two arms keep the same weights?);
- per voice of test-other: the WER of both arms (seed means), so a gap carried by one voice shows.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from omni.atomic import load_torch, write_dataframe, write_text  # noqa: E402
from omni.data.voices import Voices  # noqa: E402
from omni.results.figures import save  # noqa: E402
from omni.results.formatting import markdown  # noqa: E402
from omni.results.wer_tables import utterance_errors  # noqa: E402
from omni.sparsity.supernet import CHURN, PASS_LEVEL, PASS_LOSS  # noqa: E402

SMOOTHING_PASSES = 25       # passes of one level in the rolling mean of its loss gap
LAST_PART = 1 / 3           # "late training": the last third of the steps
SLOPE_STEPS = 100           # the gap's slope is given per this many steps
TRAINING_COLUMNS = ["arm", "paired_individual", "seed", "level", "passes_at_level", "gap_last_third",
                    "gap_slope_per_100_steps", "churn_mean", "churn_last_third", "mask_iou"]
VOICE_COLUMNS = ["arm", "paired_individual", "level", "voice", "utterances", "omni_wer", "individual_wer",
                 "rel_diff_pct"]


@dataclass(frozen=True)
class LevelRun:
    """One omni level of one seed with its individual job: the files that describe both."""

    arm: str
    paired_individual: str
    seed: int
    level: float
    omni_log: Path
    individual_log: Path
    omni_model: Path
    individual_model: Path
    omni_eval: Path           # eval folder of the split the voices are read on
    individual_eval: Path


def loss_gap(omni_log: pd.DataFrame, individual_log: pd.DataFrame, level: float) -> pd.DataFrame:
    """step, gap (supernet pass at `level` - individual job's loss at that step) and its rolling mean."""
    passes = sorted(int(column.removeprefix(PASS_LEVEL)) for column in omni_log.columns
                    if column.startswith(PASS_LEVEL))
    rows = [omni_log.loc[np.isclose(omni_log[f"{PASS_LEVEL}{i}"], level), ["step", f"{PASS_LOSS}{i}"]]
            .set_axis(["step", "omni_loss"], axis=1) for i in passes]
    at_level = pd.concat(rows).sort_values("step", kind="stable") if rows else pd.DataFrame(columns=["step", "omni_loss"])
    paired = at_level.merge(individual_log[["step", "loss"]], on="step", how="inner")
    paired["gap"] = paired["omni_loss"] - paired["loss"]
    paired["smoothed"] = paired["gap"].rolling(SMOOTHING_PASSES, min_periods=1).mean()
    return paired[["step", "gap", "smoothed"]].reset_index(drop=True)


def late_gap(gap: pd.DataFrame, steps: int) -> tuple[float, float]:
    """(mean gap, least-squares slope per SLOPE_STEPS) over the last third of the steps."""
    late = gap[gap["step"] > (1 - LAST_PART) * steps]
    if len(late) < 2:
        return (float(late["gap"].mean()) if len(late) else math.nan), math.nan
    slope = np.polyfit(late["step"].to_numpy(float), late["gap"].to_numpy(float), 1)[0]
    return float(late["gap"].mean()), float(slope * SLOPE_STEPS)


def churn(omni_log: pd.DataFrame, level: float, steps: int) -> tuple[float, float]:
    """(mean churn over all re-rankings, over those of the last third): NaN without churn columns."""
    column = f"{CHURN}{level:g}"
    if column not in omni_log:
        return math.nan, math.nan
    moves = omni_log[["step", column]].dropna()
    late = moves[moves["step"] > (1 - LAST_PART) * steps]
    return float(moves[column].mean()), float(late[column].mean())


def mask_iou(omni_model: Path, individual_model: Path) -> float:
    """|both keep| / |either keeps| over the prunable weights of the two artefacts' masks."""
    omni, individual = load_torch(omni_model)["masks"], load_torch(individual_model)["masks"]
    both = sum(int((omni[name] & individual[name]).count_nonzero()) for name in omni)
    either = sum(int((omni[name] | individual[name]).count_nonzero()) for name in omni)
    return both / either if either else math.nan


def training_rows(runs: Sequence[LevelRun]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per run: gap, churn, IoU; the smoothed gap curves with arm, seed and level)."""
    rows, curves = [], []
    logs: dict[Path, pd.DataFrame] = {}
    for run in runs:
        omni_log = logs.setdefault(run.omni_log, pd.read_csv(run.omni_log))
        individual_log = pd.read_csv(run.individual_log)
        steps = int(omni_log["step"].max())
        gap = loss_gap(omni_log, individual_log, run.level)
        mean_late, slope = late_gap(gap, steps)
        churn_all, churn_late = churn(omni_log, run.level, steps)
        rows.append({"arm": run.arm, "paired_individual": run.paired_individual, "seed": run.seed,
                     "level": run.level, "passes_at_level": len(gap), "gap_last_third": mean_late,
                     "gap_slope_per_100_steps": slope, "churn_mean": churn_all, "churn_last_third": churn_late,
                     "mask_iou": mask_iou(run.omni_model, run.individual_model)})
        curves.append(gap.assign(arm=run.arm, seed=run.seed, level=run.level))
    return pd.DataFrame(rows, columns=TRAINING_COLUMNS), pd.concat(curves) if curves else pd.DataFrame()


def voice_rows(runs: Sequence[LevelRun], decode: str, voices: Voices) -> pd.DataFrame:
    """Per arm, level and voice of the split: both arms' seed-mean WER and their relative difference."""
    rows = []
    by_level: dict[tuple[str, str, float], list[LevelRun]] = {}
    for run in runs:
        by_level.setdefault((run.arm, run.paired_individual, run.level), []).append(run)
    for (arm, paired, level), group in by_level.items():
        omni = _per_voice([run.omni_eval for run in group], decode, voices)
        individual = _per_voice([run.individual_eval for run in group], decode, voices)
        for voice in sorted(set(omni.index) & set(individual.index)):
            wer_o, wer_i = omni.at[voice, "wer"], individual.at[voice, "wer"]
            rows.append({"arm": arm, "paired_individual": paired, "level": level, "voice": voice,
                         "utterances": int(omni.at[voice, "utterances"]), "omni_wer": wer_o, "individual_wer": wer_i,
                         "rel_diff_pct": 100 * (wer_o - wer_i) / wer_i if wer_i > 0 else math.nan})
    return pd.DataFrame(rows, columns=VOICE_COLUMNS)


def _per_voice(eval_dirs: Iterable[Path], decode: str, voices: Voices) -> pd.DataFrame:
    """Seed-mean corpus WER per voice (index) and its utterance count."""
    per_seed = []
    for folder in eval_dirs:
        errors = utterance_errors(folder, decode)
        errors["voice"] = errors["utt_id"].map(voices.voice_of)
        sums = errors.groupby("voice")[["errors", "ref_words"]].sum()
        per_seed.append(pd.DataFrame({"wer": sums["errors"] / sums["ref_words"],
                                      "utterances": errors.groupby("voice").size()}))
    stacked = pd.concat(per_seed)
    return stacked.groupby(level=0).agg(wer=("wer", "mean"), utterances=("utterances", "first"))


def diagnostics_markdown(training: pd.DataFrame, by_voice: pd.DataFrame, split: str, decode: str) -> str:
    shown = training.assign(**{column: training[column].map(lambda value: f"{value:.3f}")
                               for column in ("gap_last_third", "gap_slope_per_100_steps", "churn_mean",
                                              "churn_last_third", "mask_iou")})
    per_level = (by_voice.groupby(["arm", "level"])["rel_diff_pct"].agg(["min", "max"]).reset_index()
                 if not by_voice.empty else pd.DataFrame(columns=["arm", "level", "min", "max"]))
    voice_text = (markdown(by_voice.assign(omni_wer=(100 * by_voice["omni_wer"]).round(2),
                                           individual_wer=(100 * by_voice["individual_wer"]).round(2),
                                           rel_diff_pct=by_voice["rel_diff_pct"].round(1)))
                  if not by_voice.empty else "(no voices)")
    spread = "; ".join(f"{row.arm} {row.level:g}: {row.min:+.1f} to {row.max:+.1f} %" for row in per_level.itertuples())
    return ("### Supernet levels against their individual jobs, in training\n\n" + markdown(shown) + "\n\n"
            "gap: the supernet's training loss on a pass at the level minus the individual job's loss at the same "
            "step (same seed, same batch; labels + distillation term as each job logs it), averaged over the last "
            f"third of training; slope: least squares over that third, per {SLOPE_STEPS} steps (negative: the gap "
            "is still closing). churn: per re-ranking, the share of the level's final mask that moved (all "
            "re-rankings; the last third's). mask IoU: the extracted mask against the individual job's.\n\n"
            f"### Per voice of {split} ({decode})\n\n" + voice_text + "\n\n"
            f"Seed-mean WER (%) per voice and the relative difference omni - individual; range per level: {spread}.\n")


def diagnostics_figure(curves: pd.DataFrame, training: pd.DataFrame, by_voice: pd.DataFrame, arm: str) -> Figure:
    """Row 1: the smoothed loss gap per level over training, one line per seed; row 2: per-voice relative
    difference per level. For one omni arm (the study's own)."""
    levels = sorted(training.loc[training["arm"] == arm, "level"].unique())
    figure, axes = plt.subplots(2, max(1, len(levels)), figsize=(4.2 * max(1, len(levels)), 7.0), squeeze=False)
    for column, level in enumerate(levels):
        axis = axes[0][column]
        for seed, curve in curves[(curves["arm"] == arm) & (curves["level"] == level)].groupby("seed"):
            axis.plot(curve["step"], curve["smoothed"], label=f"seed {seed}")
        axis.axhline(0.0, color="gray", linewidth=0.8)
        axis.set_title(f"{arm} {level:g}: loss gap to individual")
        axis.set_xlabel("step")
        axis.set_ylabel(f"supernet - individual (rolling {SMOOTHING_PASSES} passes)")
        axis.legend(fontsize=7)
        voices = by_voice[(by_voice["arm"] == arm) & (by_voice["level"] == level)]
        axes[1][column].bar(voices["voice"], voices["rel_diff_pct"], color="tab:orange")
        axes[1][column].axhline(0.0, color="gray", linewidth=0.8)
        axes[1][column].set_ylabel("omni - individual (rel. %)")
        axes[1][column].tick_params(axis="x", rotation=60, labelsize=7)
    figure.tight_layout()
    return figure


def write_diagnostics(runs: Sequence[LevelRun], decode: str, split: str, voices: Voices,
                      outputs: Mapping[str, str | os.PathLike], arm: str = "omni") -> None:
    """outputs keys: csv (training), voices_csv, md, png."""
    training, curves = training_rows(runs)
    by_voice = voice_rows(runs, decode, voices)
    write_dataframe(outputs["csv"], training)
    write_dataframe(outputs["voices_csv"], by_voice)
    write_text(outputs["md"], diagnostics_markdown(training, by_voice, split, decode))
    save(diagnostics_figure(curves, training, by_voice, arm), outputs["png"])
