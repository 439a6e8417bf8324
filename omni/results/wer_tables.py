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
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from omni.arms import DENSE_TAG, arm_order, level_tag, tag_level
from omni.atomic import write_dataframe, write_text
from omni.data.voices import Voices
from omni.results.bootstrap import BootstrapSettings, PairedDifference, seeded_paired_bootstrap
from omni.results.formatting import (
    BYTES_PER_MB,
    DIFFERENCE_COLUMNS,
    MILLION,
    MISSING,
    PERCENT,
    SIGNIFICANT_MARK,
    TEX_MISSING,
    fmt_ci,
    fmt_confidence,
    fmt_mean_sd,
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


MODEL_FIELDS = ("arm", "seed", "tag", "sparsity", "split", "params_total", "params_kept", "prunable_total",
                "prunable_kept", "export_bytes_fp32", "export_bytes_fp16")
DECODE_FIELDS = ("wer", "cer", "utterances", "words", "decode_seconds", "audio_seconds", "rtf")
WER_COLUMNS = ["arm", "seed", "tag", "sparsity", "params_kept", "export_bytes_fp32", "export_bytes_fp16",
               "split", "decode", "wer", "cer", "utterances"]
SIZE_COLUMNS = ("sparsity", "params_kept", "export_bytes_fp32", "export_bytes_fp16")
_ERROR_COLUMNS = ["substitutions", "deletions", "insertions"]


@dataclass(frozen=True)
class Comparison:
    """One row of the sparsity table: which model sets the size, and the two WERs compared.

    Models are (arm, tag): each stands for its runs, one per training seed."""

    model: str                         # dense | uniform | searched
    tag: str
    size_from: tuple[str, str]         # (arm, tag) whose size and sparsity the row shows
    individual: tuple[str, str]
    omni: tuple[str, str] | None
    uniform_omni: tuple[str, str] | None = None   # searched rows: the uniform omni model of the budget's level


@dataclass(frozen=True)
class Runs:
    """One model's runs on one split: per-utterance word errors, one row per training seed."""

    seeds: tuple[int, ...]
    errors: np.ndarray        # (runs, utterances)
    utt_ids: pd.Series
    ref_words: pd.Series
    source: str               # a folder of the runs, for error messages
    voices: np.ndarray        # the voice of each utterance's speaker (omni.data.voices)
    speakers: np.ndarray      # each utterance's speaker (itself where the corpus names none)
    named_speakers: bool      # the corpus names every utterance's speaker

    @property
    def wers(self) -> np.ndarray:
        return self.errors.sum(axis=1) / self.ref_words.sum()


def load_summaries(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """One row per model run x split x decode; `eval_dir` locates the per-utterance TSVs."""
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


def load_runs(rows: pd.DataFrame, decode: str, voices: Voices | None = None) -> Runs:
    """The per-utterance errors of a model's runs (summary rows of one arm, tag, split), by seed;
    every run must score the same utterances in the same order, or no paired comparison is possible.
    `voices`: who speaks each utterance (omni.data.voices; None: LibriSpeech ids, one voice per speaker)."""
    rows = rows.sort_values("seed")
    tables = [utterance_errors(eval_dir, decode) for eval_dir in rows["eval_dir"]]
    first = tables[0]
    for eval_dir, table in zip(rows["eval_dir"], tables):
        if not (table["utt_id"].equals(first["utt_id"]) and table["ref_words"].equals(first["ref_words"])):
            raise ValueError(f"{eval_dir} and {rows['eval_dir'].iloc[0]} score different utterances ({decode}.tsv); "
                             "the runs of a model must score the same ones in the same order")
    voices = voices or Voices()
    return Runs(seeds=tuple(int(seed) for seed in rows["seed"]),
                errors=np.vstack([table["errors"].to_numpy() for table in tables]),
                utt_ids=first["utt_id"], ref_words=first["ref_words"], source=str(rows["eval_dir"].iloc[0]),
                voices=first["utt_id"].map(voices.voice_of).to_numpy(),
                speakers=first["utt_id"].map(voices.speaker_of).to_numpy(),
                named_speakers=voices.names_speakers(first["utt_id"]))


def resampling_clusters(runs: Runs, settings: BootstrapSettings) -> np.ndarray | None:
    """The test data's independent units: whole voices where a split has enough of them, or where its
    speakers share fewer voices (the synthetic test-other: 96 speaker folders of 6 voices; 6 units,
    however few), else None (resample utterances: a few speakers, each its own voice, or none named)."""
    if not runs.named_speakers:
        return None
    voices = len(set(runs.voices))
    return runs.voices if voices >= settings.min_speakers or voices < len(set(runs.speakers)) else None


def resampling_unit(runs: Runs, settings: BootstrapSettings) -> str:
    """What the intervals of a split resample: `N speakers` (each its own voice), `N voices` (speakers
    that share voices), `utterances`, or `utterances (no speakers named)`."""
    clusters = resampling_clusters(runs, settings)
    if clusters is None:
        return "utterances" if runs.named_speakers else "utterances (no speakers named)"
    voices = len(set(clusters))
    return f"{voices} speakers" if voices == len(set(runs.speakers)) else f"{voices} voices"


def compare_runs(system: Runs, baseline: Runs, settings: BootstrapSettings,
                 clusters: np.ndarray | None = None) -> PairedDifference:
    """Seed-mean WER difference system - baseline with the two-level interval (seeds x test data);
    seeds are paired when both sides ran the same ones (run i of each from the same seed's batches).
    `clusters`: the resampling unit of each utterance; by default its speaker where the split has enough."""
    if not (system.utt_ids.equals(baseline.utt_ids) and system.ref_words.equals(baseline.ref_words)):
        raise ValueError(f"{system.source} and {baseline.source} score different utterances; "
                         "a paired comparison needs the same ones in the same order")
    units = resampling_clusters(system, settings) if clusters is None else clusters
    return seeded_paired_bootstrap(system.errors, baseline.errors, system.ref_words, settings, units,
                                   paired_seeds=system.seeds == baseline.seeds)


def wer_table(summaries: pd.DataFrame, splits: Sequence[str], decodes: Sequence[str]) -> pd.DataFrame:
    """Every measured (arm, seed, tag, split, decode), raw fractions as in the summaries.

    Order: arms as in the study, then sparsity, tag, seed, then splits and decodes as in the config.
    """
    ranks = {"_arm": summaries["arm"].map(arm_order), "_split": summaries["split"].map(_ranks(splits)),
             "_decode": summaries["decode"].map(_ranks(decodes))}
    ordered = summaries.assign(**ranks).sort_values(["_arm", "sparsity", "tag", "seed", "_split", "_decode"])
    return ordered[WER_COLUMNS].reset_index(drop=True)


def _ranks(names: Sequence[str]) -> dict[str, int]:
    return {name: rank for rank, name in enumerate(names)}


def wer_markdown(table: pd.DataFrame) -> str:
    shown = pd.DataFrame({
        "arm": table["arm"], "seed": table["seed"], "tag": table["tag"],
        "sparsity": table["sparsity"].map(fmt_sparsity),
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
        uniform_tag = level_tag(tag_level(tag))
        rows.append(Comparison("searched", tag, ("omni-searched", tag), ("individual", uniform_tag),
                               ("omni-searched", tag), ("omni", uniform_tag)))
    return rows


class RunIndex:
    """The summaries of the tables' decode, looked up as one model's runs on one split."""

    def __init__(self, summaries: pd.DataFrame, decode: str, voices: Voices | None = None) -> None:
        self.decode = decode
        self.voices = voices
        self.groups = {key: rows for key, rows in
                       summaries[summaries["decode"] == decode].groupby(["arm", "tag", "split"])}
        self.cache: dict[tuple[str, str, str], Runs] = {}

    def get(self, model: tuple[str, str] | None, split: str) -> Runs | None:
        if not model:
            return None
        key = (*model, split)
        if key not in self.groups:
            return None
        if key not in self.cache:
            self.cache[key] = load_runs(self.groups[key], self.decode, self.voices)
        return self.cache[key]


def sparsity_table(summaries: pd.DataFrame, splits: Sequence[str], decode: str,
                   settings: BootstrapSettings, voices: Voices | None = None) -> pd.DataFrame:
    """Rows = models of `comparisons`; per split: each arm's mean WER over its training seeds and the
    seed spread (sample SD), omni - individual with its two-level interval, the control and the
    pruning damage, and for searched rows the difference from uniform omni.

    Differences are omni - individual (negative = omni better), relative to the individual WER.
    """
    sizes = summaries.groupby(["arm", "tag"])[list(SIZE_COLUMNS)].mean()
    runs = RunIndex(summaries, decode, voices)
    rows = []
    for comparison in comparisons(summaries):
        size = sizes.loc[comparison.size_from]
        row: dict[str, object] = {
            "model": comparison.model, "tag": comparison.tag, "sparsity": size["sparsity"],
            "params_kept": size["params_kept"],
            "export_mb_fp32": size["export_bytes_fp32"] / BYTES_PER_MB,
            "export_mb_fp16": size["export_bytes_fp16"] / BYTES_PER_MB,
        }
        for split in splits:
            individual, omni = runs.get(comparison.individual, split), runs.get(comparison.omni, split)
            control = runs.get(CONTROL, split)
            row.update(seed_cells(f"{split}/individual", individual))
            row.update(seed_cells(f"{split}/omni", omni))
            row.update(seed_cells(f"{split}/control", control))
            row[f"{split}/bootstrap_unit"] = resampling_unit(individual, settings) if individual else MISSING
            row.update(difference_cells(f"{split}/", omni, individual, settings))
            for side, pruned in (("individual", individual), ("omni", omni)):
                row.update(difference_cells(f"{split}/{side}_damage_", pruned, control, settings))
            uniform = runs.get(comparison.uniform_omni, split)
            row[f"{split}/uniform_omni_wer"] = uniform.wers.mean() if uniform else np.nan
            row.update(difference_cells(f"{split}/vs_uniform_", omni if uniform else None, uniform, settings))
        rows.append(row)
    return pd.DataFrame(rows)


def seed_cells(prefix: str, runs: Runs | None) -> dict[str, object]:
    """`<prefix>_wer`: mean over seeds; `_wer_sd`: the seed spread (sample SD, NaN for one seed); `_seeds`."""
    if runs is None:
        return {f"{prefix}_wer": np.nan, f"{prefix}_wer_sd": np.nan, f"{prefix}_seeds": 0}
    wers = runs.wers
    return {f"{prefix}_wer": wers.mean(), f"{prefix}_wer_sd": wers.std(ddof=1) if len(wers) > 1 else np.nan,
            f"{prefix}_seeds": len(wers)}


def difference_cells(prefix: str, system: Runs | None, baseline: Runs | None,
                      settings: BootstrapSettings) -> dict[str, object]:
    """system - baseline: absolute and relative (%) with their two-level intervals; NaN when a side is missing."""
    if system is None or baseline is None:
        return {f"{prefix}{name}": np.nan for name in DIFFERENCE_FIELDS}
    difference = compare_runs(system, baseline, settings)
    values = (difference.diff_abs, *difference.ci_abs, difference.diff_rel_pct, *difference.ci_rel_pct,
              difference.excludes_zero, seed_list(difference.seed_diffs_abs),
              seed_list(difference.seed_diffs_rel_pct), difference.degrees_of_freedom, difference.test_sd_rel_pct)
    return {f"{prefix}{name}": value for name, value in zip(DIFFERENCE_FIELDS, values)}


# The CSV columns of one difference: the point and interval, absolute and relative; per training seed the
# paired difference on the whole split (';'-separated, seeds in order; empty when seeds are not paired); the
# interval's degrees of freedom (inf: no seed part); the relative difference's SD over test resamples alone.
DIFFERENCE_FIELDS = ("abs_diff", "abs_ci_low", "abs_ci_high", "rel_diff_pct", "rel_ci_low_pct", "rel_ci_high_pct",
                     "excludes_zero", "seed_abs_diffs", "seed_rel_diffs_pct", "ci_dof", "test_sd_rel_pct")


def seed_list(values: Iterable[float]) -> str:
    return ";".join(f"{value:.6g}" for value in values)


def sparsity_markdown(table: pd.DataFrame, splits: Sequence[str], decode: str,
                      settings: BootstrapSettings, teachers: Mapping[str, str] | None = None) -> str:
    shown = pd.DataFrame({
        "model": [_row_label(row) for row in table.itertuples()],
        "sparsity": table["sparsity"].map(fmt_sparsity),
        "params (M)": (table["params_kept"] / MILLION).map(fmt_size),
        "export fp32 (MB)": table["export_mb_fp32"].map(fmt_size),
    })
    confidence = fmt_confidence(settings.confidence)
    for split in splits:
        shown[f"{split} ind."] = mean_sd_texts(table, f"{split}/individual")
        shown[f"{split} omni"] = mean_sd_texts(table, f"{split}/omni")
        shown[f"{split} Δ rel."] = table[f"{split}/rel_diff_pct"].map(fmt_rel)
        shown[f"{split} {confidence} CI"] = [fmt_ci(table, f"{split}/", i) for i in table.index]
    return (shown.to_markdown(index=False, disable_numparse=True) + "\n\n"
            + _sparsity_note(table, splits, decode, settings, teachers) + "\n\n"
            + searched_markdown(table, splits, settings)
            + damage_markdown(table, splits, decode, settings))


def mean_sd_texts(table: pd.DataFrame, prefix: str) -> list[str]:
    return [fmt_mean_sd(PERCENT * mean, PERCENT * sd)
            for mean, sd in zip(table[f"{prefix}_wer"], table[f"{prefix}_wer_sd"])]


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
        shown[f"{split} searched"] = mean_sd_texts(searched, f"{split}/omni")
        shown[f"{split} Δ rel. [{confidence} CI]"] = [difference_text(searched, f"{split}/vs_uniform_", i, "rel")
                                                    for i in searched.index]
    return ("### Searched per-layer sparsity vs uniform omni at the same level\n\n" + markdown(shown)
            + "\n\nRel. diff (%) = (searched - uniform) / uniform, negative = the search helped; means over "
              "seeds (each seed's search on its own supernet); same two-level bootstrap as above.\n\n")


def difference_text(table: pd.DataFrame, prefix: str, index: int, measure: str) -> str:
    """`+1.2 [-0.3, +2.8]*`: a difference with its interval, relative (%) or absolute (WER points)."""
    (value_column, _, _), scale = DIFFERENCE_COLUMNS[measure]
    value = table.at[index, f"{prefix}{value_column}"]
    if pd.isna(value):
        return MISSING
    return f"{fmt_rel(scale * value)} {fmt_ci(table, prefix, index, measure)}"


def has_control(table: pd.DataFrame, splits: Sequence[str]) -> bool:
    return any(table[f"{split}/control_wer"].notna().any() for split in splits)


def damage_frame(table: pd.DataFrame, splits: Sequence[str], settings: BootstrapSettings) -> pd.DataFrame:
    """Display cells of the pruning damage against the dense-continued control (absolute WER points)."""
    confidence = fmt_confidence(settings.confidence)
    shown = pd.DataFrame({"model": [_row_label(row) for row in table.itertuples()],
                          "sparsity": table["sparsity"].map(fmt_sparsity)})
    for split in splits:
        shown[f"{split} control"] = mean_sd_texts(table, f"{split}/control")
        for side, label in (("individual", "ind."), ("omni", "omni")):
            shown[f"{split} {label} - control [{confidence} CI]"] = [
                difference_text(table, f"{split}/{side}_damage_", i, "abs") for i in table.index]
    return shown


def damage_markdown(table: pd.DataFrame, splits: Sequence[str], decode: str, settings: BootstrapSettings) -> str:
    if not has_control(table, splits):
        return ""
    return ("### Pruning damage: WER - control WER\n\n" + markdown(damage_frame(table, splits, settings))
            + "\n\n" + _damage_note(decode, settings) + "\n")


def _damage_note(decode: str, settings: BootstrapSettings) -> str:
    return (f"WER points (absolute), decode {decode}. Control: the dense model trained as many steps as a "
            "pruning job, on the same batches and schedule (same training seed), without masks "
            "(dense-continued). A pruned model's damage is its WER minus the control's: what pruning costs net "
            "of the extra training. On the dense row, dense - control says whether the dense job had converged "
            f"(positive: more training still helped). Means over seeds; {fmt_confidence(settings.confidence)} "
            f"two-level CI as above; {SIGNIFICANT_MARK} = CI excludes 0.")


def sparsity_latex(table: pd.DataFrame, splits: Sequence[str], decode: str,
                   settings: BootstrapSettings, teachers: Mapping[str, str] | None = None) -> str:
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
        shown[(split, "Ind.")] = [tex_number(text) for text in mean_sd_texts(table, f"{split}/individual")]
        shown[(split, "Omni")] = [tex_number(text) for text in mean_sd_texts(table, f"{split}/omni")]
        shown[(split, r"$\Delta$\%")] = table[f"{split}/rel_diff_pct"].map(fmt_rel).map(tex_number)
        shown[(split, f"{fmt_confidence(settings.confidence)} CI".replace("%", r"\%"))] = [
            tex_number(fmt_ci(table, f"{split}/", i)) for i in table.index]
        math_columns += list(shown.columns[-4:])
    shown.columns = pd.MultiIndex.from_tuples(shown.columns)
    shown = shown.replace(MISSING, TEX_MISSING)
    text_columns = [column for column in shown.columns if column not in math_columns]
    styler = (shown.style.hide(axis="index").format(escape="latex", subset=text_columns, na_rep="--")
              .format_index(escape="latex", axis=1, level=0))
    tabular = styler.to_latex(hrules=True, multicol_align="c", column_format="l" + "r" * (len(lead) - 1) + "rrrc" * len(splits))
    caption = tex(_sparsity_note(table, splits, decode, settings, teachers))
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


def teacher_sentence(teachers: Mapping[str, str]) -> str:
    """What each arm learns from besides the labels (omni.job_params.teachers), for the caption."""
    individual, omni = teachers["individual"], teachers["omni"]
    if individual == omni == "dense":
        return ("Both arms learn from the same teacher besides the labels: the frozen dense model's output "
                "distribution over the RNN-T lattice (distill.*).")
    if individual == "none" and omni == "inplace":
        return ("The supernet's sparser sub-networks learn from its densest one in place; no arm has an external "
                "teacher (distill.*).")
    if individual == omni == "none":
        return "No arm learns from a teacher (distill.*: none): labels only."
    return (f"Teachers differ (distill.individual: {individual}, distill.omni: {omni}): the difference mixes the "
            "teacher with the pruning method.")


def control_sentence(teachers: Mapping[str, str]) -> str:
    """Whether the control learns from the external teacher of the arms it controls (distill.control)."""
    control = teachers["control"]
    external = {teachers["individual"], "dense" if teachers["omni"] == "dense" else "none"}
    if external == {control}:
        return (f"The control learns from the same teacher as both arms (distill.control: {control}), so a "
                "damage column is what pruning costs.")
    return (f"The control's teacher (distill.control: {control}) is not the arms' ({', '.join(sorted(external))}): "
            "a damage column mixes the teacher's gain in with what pruning costs.")


def _sparsity_note(table: pd.DataFrame, splits: Sequence[str], decode: str, settings: BootstrapSettings,
                   teachers: Mapping[str, str] | None = None) -> str:
    seeds = int(np.nanmax([table[f"{split}/individual_seeds"].max() for split in splits]))
    units = "; ".join(f"{split}: {unit}" for split in splits
                      for unit in table[f"{split}/bootstrap_unit"].drop_duplicates() if unit != MISSING)
    return (f"WER in %, decode {decode}: mean over {seeds} training seed(s) ± their sample SD (the seed spread). "
            "Rel. diff (%) = (omni - individual) / individual of the seed means, negative = omni better; "
            f"{fmt_confidence(settings.confidence)} CI over training seeds and test data: the seed part "
            "t-based (the per-seed paired differences' sample variance, Welch-Satterthwaite degrees of freedom: "
            "near t(2) with three seeds), the test part a paired bootstrap "
            f"({settings.resamples} resamples, seed {settings.seed}) drawing the test data once for every run, by "
            f"speaker where a split has at least {settings.min_speakers} speakers, else by utterance ({units}); "
            f"{SIGNIFICANT_MARK} = CI excludes 0. Every cell is secondary: the primary endpoint, pooled over "
            "levels on test-other, is tables/primary.md. Dense: the shared starting model, trained once "
            "(individual column). Searched (b): omni-searched per-layer sparsity under the size of uniform "
            "sparsity b, compared with the individual model at b."
            + (f" {teacher_sentence(teachers)} {control_sentence(teachers)}" if teachers else ""))


def _row_label(row) -> str:
    if row.model == "searched":
        return f"searched ({tag_level(row.tag)})"
    return row.model


def write_wer_tables(summary_paths: Iterable[str | os.PathLike], splits: Sequence[str],
                     decodes: Sequence[str], table_decode: str, settings: BootstrapSettings,
                     outputs: dict[str, str | os.PathLike], teachers: Mapping[str, str] | None = None,
                     voices: Voices | None = None) -> None:
    """outputs keys: wer_csv, wer_md, sparsity_csv, sparsity_md, sparsity_tex. `teachers`: each arm's
    (omni.job_params.teachers), named in the caption; `voices`: who speaks each utterance (omni.data.voices)."""
    summaries = load_summaries(summary_paths)
    if not (summaries["decode"] == table_decode).any():
        raise ValueError(f"config key 'report.table_decode': no summary has decode {table_decode!r}; "
                         f"found {sorted(summaries['decode'].unique())}")
    table = wer_table(summaries, splits, decodes)
    write_dataframe(outputs["wer_csv"], table)
    write_text(outputs["wer_md"], wer_markdown(table))
    comparison = sparsity_table(summaries, splits, table_decode, settings, voices)
    write_dataframe(outputs["sparsity_csv"], comparison)
    write_text(outputs["sparsity_md"], sparsity_markdown(comparison, splits, table_decode, settings, teachers))
    write_text(outputs["sparsity_tex"], sparsity_latex(comparison, splits, table_decode, settings, teachers))


def _budget_of(tag: str) -> float:
    return float(tag_level(tag))
