"""The strategy table: every pruning arm of the study side by side per level (configs/strategies.yaml
trains several omni strategies and individual arms with and without a teacher in one DAG).

Per level and arm: the mean WER over training seeds ± their spread, the difference to the
individual arm the arm is paired with (the one with the same external teacher, so neither side
has a teacher the other lacks), the pruning damage against the dense-continued control, and
what one of the arm's training jobs cost next to one job of its paired individual arm. Searched
arms are compared with their own uniform omni model at the budget's level as well. Intervals are
the two-level paired bootstrap of omni.results.wer_tables.
"""
from __future__ import annotations

import os
from typing import Collection, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from omni.data.voices import Voices
from omni.arms import SEARCHED_SUFFIX, arm_order, budget_tag, is_budget_tag, is_level_tag, level_tag, tag_level
from omni.atomic import write_dataframe, write_text
from omni.results.bootstrap import BootstrapSettings
from omni.results.formatting import (
    MISSING,
    RATIO_DECIMALS,
    SIGNIFICANT_MARK,
    fmt_confidence,
    fmt_sparsity,
    markdown,
)
from omni.results.wer_tables import (
    difference_cells,
    difference_text,
    mean_sd_texts,
    RunIndex,
    seed_cells,
    load_summaries,
)
from omni.study import CONTROL

ARM_COST_SECTION = "arm"   # the section of cost.csv with one row per pruning arm (omni.results.accounting)


def strategy_rows(summaries: pd.DataFrame, pairs: Mapping[str, str]) -> list[tuple[str, str, str, str | None]]:
    """(level tag, arm, paired individual arm, uniform omni arm for searched rows) in table order: per
    level, the individual arms, the omni arms, then each searched arm under that level's budget."""
    models = summaries.drop_duplicates(["arm", "tag"])
    arms = sorted((arm for arm in models["arm"].unique() if arm not in ("dense", CONTROL[0])), key=arm_order)
    levels = sorted({tag_level(tag) for tag in models["tag"] if is_level_tag(tag) or is_budget_tag(tag)}, key=float)
    present = set(zip(models["arm"], models["tag"]))
    rows = []
    for level in levels:
        for arm in arms:
            searched_from = arm.removesuffix(SEARCHED_SUFFIX) if arm.endswith(SEARCHED_SUFFIX) else None
            tag = budget_tag(level) if searched_from else level_tag(level)
            if (arm, tag) not in present:
                continue
            omni_arm = searched_from or arm
            paired = arm if arm.startswith("individual") else pairs.get(omni_arm, "individual")
            rows.append((tag, arm, paired, searched_from))
    return rows


def strategy_table(summaries: pd.DataFrame, splits: Sequence[str], decode: str, settings: BootstrapSettings,
                   pairs: Mapping[str, str], arm_costs: pd.DataFrame,
                   voices: Voices | None = None, uncontrolled: Collection[str] = ()) -> pd.DataFrame:
    """One row per (level, arm); per split the seed mean, SD and count, `vs_individual_*` (arm - its
    paired individual arm), `damage_*` (arm - control; NaN for the `uncontrolled` arms, trained from
    another dense model than the control) and for searched rows `vs_uniform_*`."""
    runs = RunIndex(summaries, decode, voices)
    sizes = summaries.groupby(["arm", "tag"])[["sparsity", "params_kept"]].mean()
    costs = arm_costs.drop_duplicates("arm").set_index("arm")
    rows = []
    for tag, arm, paired, searched_from in strategy_rows(summaries, pairs):
        level = tag_level(tag)
        cost_arm = searched_from or arm
        row: dict[str, object] = {
            "level": float(level), "arm": arm, "paired_individual": paired,
            "sparsity": sizes.at[(arm, tag), "sparsity"], "params_kept": sizes.at[(arm, tag), "params_kept"],
            "job_vs_one_individual_job": costs.at[cost_arm, "vs_one_individual_job"] if cost_arm in costs.index
            else np.nan,
            "job_vs_individual_arm": costs.at[cost_arm, "vs_individual_arm"] if cost_arm in costs.index
            else np.nan,
        }
        for split in splits:
            system = runs.get((arm, tag), split)
            row.update(seed_cells(f"{split}/arm", system))
            individual = None if arm == paired else runs.get((paired, level_tag(level)), split)
            row.update(difference_cells(f"{split}/vs_individual_", system, individual, settings))
            control = None if (searched_from or arm) in uncontrolled else runs.get(CONTROL, split)
            row.update(difference_cells(f"{split}/damage_", system if control else None, control, settings))
            uniform = runs.get((searched_from, level_tag(level)), split) if searched_from else None
            row.update(difference_cells(f"{split}/vs_uniform_", system if uniform else None, uniform, settings))
        rows.append(row)
    return pd.DataFrame(rows)


def strategy_markdown(table: pd.DataFrame, splits: Sequence[str], decode: str, settings: BootstrapSettings) -> str:
    """One table per split: rows (level, arm); WER, the difference to the paired individual arm, the
    damage against the control, and the job's cost next to one individual job."""
    confidence = fmt_confidence(settings.confidence)
    sections = []
    for split in splits:
        shown = pd.DataFrame({
            "level": table["level"].map(fmt_sparsity), "arm": table["arm"],
            "WER %": mean_sd_texts(table, f"{split}/arm"),
            f"vs paired individual, rel. % [{confidence} CI]": [
                _paired_text(table, split, i) for i in table.index],
            f"damage vs control, WER points [{confidence} CI]": [
                difference_text(table, f"{split}/damage_", i, "abs") for i in table.index],
            f"searched vs uniform, rel. % [{confidence} CI]": [
                difference_text(table, f"{split}/vs_uniform_", i, "rel") for i in table.index],
            "job / one ind. job": table["job_vs_one_individual_job"].map(_ratio),
            "job / ind. arm (K jobs)": table["job_vs_individual_arm"].map(_ratio),
        })
        sections += [f"### {split}", "", markdown(shown), ""]
    return "\n".join(["## Every pruning arm per level", "", *sections, strategy_note(table, decode, settings), ""])


def _paired_text(table: pd.DataFrame, split: str, index: int) -> str:
    text = difference_text(table, f"{split}/vs_individual_", index, "rel")
    return text if text == MISSING else f"{text} vs {table.at[index, 'paired_individual']}"


def _ratio(value: float) -> str:
    return MISSING if pd.isna(value) else f"{value:.{RATIO_DECIMALS}f}x"


def strategy_note(table: pd.DataFrame, decode: str, settings: BootstrapSettings) -> str:
    seeds = int(np.nanmax([table[column].max() for column in table.columns if column.endswith("/arm_seeds")] or [0]))
    return (f"WER in %, decode {decode}: mean over {seeds} training seed(s) ± their sample SD. An omni arm is "
            "compared with the individual arm that has the same external teacher (distill.individual / "
            "distill.omni: dense or none; an in-place teacher is internal to the supernet's step): rel. % = "
            "(arm - paired individual) / paired individual, negative = the arm is better. Damage = arm - control "
            "(the dense model trained on without masks, same seeds), in WER points. Searched rows (tag b<level>): "
            "the search's per-layer model under the size of the uniform level, against that arm's uniform model. "
            f"{fmt_confidence(settings.confidence)} CI over training seeds (t-based) and test data (paired bootstrap, "
            f"{settings.resamples} resamples), as in tables/wer_vs_sparsity.md; {SIGNIFICANT_MARK} = CI excludes 0. "
            "Job cost: one training job of the arm (an omni arm: its supernet + K extractions), mean over seeds, in device-hours, over one job "
            "of its paired individual arm (equal compute ~ 1.00x) and over that arm's K jobs (the paper's "
            "claim: ~ 1/K).")


def read_arm_costs(path: str | os.PathLike) -> pd.DataFrame:
    """The per-arm rows of a cost.csv (omni.results.cost_tables)."""
    frame = pd.read_csv(path)
    return frame[frame["section"] == ARM_COST_SECTION].reset_index(drop=True)


def write_strategy_tables(summary_paths: Iterable[str | os.PathLike], cost_csv: str | os.PathLike,
                          splits: Sequence[str], table_decode: str, settings: BootstrapSettings,
                          pairs: Mapping[str, str], outputs: Mapping[str, str | os.PathLike],
                          voices: Voices | None = None, uncontrolled: Collection[str] = ()) -> None:
    """outputs keys: csv, md. `voices`: who speaks each utterance (omni.data.voices), the test data's units;
    `uncontrolled`: arms without damage columns (job_params.on_other_dense)."""
    table = strategy_table(load_summaries(summary_paths), splits, table_decode, settings, pairs,
                           read_arm_costs(cost_csv), voices, uncontrolled)
    write_dataframe(outputs["csv"], table)
    write_text(outputs["md"], strategy_markdown(table, splits, table_decode, settings))
