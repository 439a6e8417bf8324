"""The study's ONE pre-declared primary endpoint, so that twelve level x split cells are not twelve chances.

Primary: the relative difference omni - individual of the WER pooled over the levels (the mean over
levels of each arm's seed-mean WER), on test-other, in the tables' decode, with its two-level interval
(omni.results.bootstrap), and a one-sided check against the paper's claim that omni is at least 2 %
better. Every per-level and per-split cell of the other tables is secondary. Each split's test data
alone resolve a relative difference of about +/- z x its test-resampling SD (the minimum detectable
effect); a split n times as large resolves it sqrt(n) times finer, which gives the size that resolves 2 %.

With more than one dense model (config `dense_replicates`), the endpoint is computed on each (its own arms
against each other), and over the dense models as the mean of their estimates with a t interval on the
dense models' spread (n - 1 degrees of freedom): each dense model's estimate carries its own seeds' and
test data's noise, so the spread of the estimates covers every component, the between-dense one included.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from omni.data.voices import Voices
from omni.atomic import write_dataframe, write_text
from omni.results.bootstrap import BootstrapSettings, PairedDifference, student_t_quantile
from omni.arms import is_level_tag, tag_level
from omni.results.wer_tables import (
    RunIndex,
    Runs,
    compare_runs,
    load_summaries,
    resampling_clusters,
    resampling_unit,
    seed_list,
)

PRIMARY_SPLIT = "test-other"
PAPER_CLAIM_REL_PCT = -2.0   # the paper's smallest claimed gain: omni at least 2 % better (relative)
PRIMARY_COLUMNS = ("split", "dense_seed", "levels", "seeds", "resampling_unit", "omni_wer", "individual_wer", "abs_diff",
                   "rel_diff_pct", "rel_ci_low_pct", "rel_ci_high_pct", "one_sided_upper_pct", "one_sided_lower_pct",
                   "claim", "seed_rel_diffs_pct", "ci_dof", "test_resolves_rel_pct", "utterances",
                   "utterances_to_resolve_2pct", "dense_rel_diffs_pct")
OVER_DENSE = "all"   # the dense_seed of the rows over every dense model


@dataclass(frozen=True)
class Endpoint:
    """The pooled comparison on one split (the primary one on test-other)."""

    split: str
    levels: tuple[str, ...]
    seeds: int
    unit: str
    omni_wer: float
    individual_wer: float
    abs_diff: float
    rel_diff_pct: float
    ci_rel_pct: tuple[float, float]
    one_sided: tuple[float, float]     # (lower, upper) one-sided bounds at the tables' confidence
    seed_rel_diffs_pct: tuple[float, ...]
    degrees_of_freedom: float
    test_resolves_rel_pct: float      # half-width of the test data's own interval: the minimum detectable effect
    utterances: int

    @property
    def claim(self) -> str:
        return claim_of(self.one_sided)

    @property
    def utterances_to_resolve_2pct(self) -> float:
        """Test utterances whose own interval would be +/- 2 % (the resolution scales as 1 / sqrt(size))."""
        return self.utterances * (self.test_resolves_rel_pct / abs(PAPER_CLAIM_REL_PCT)) ** 2


def claim_of(one_sided: tuple[float, float]) -> str:
    """The paper's claim (omni >= 2 % better) against the one-sided (lower, upper) bounds."""
    if one_sided[1] < PAPER_CLAIM_REL_PCT:
        return "supported"
    if one_sided[0] > PAPER_CLAIM_REL_PCT:
        return "rejected"
    return "undecided"


@dataclass(frozen=True)
class OverDense:
    """The endpoint on one split over the study's dense models: the mean of their estimates."""

    split: str
    dense_seeds: tuple[int, ...]
    estimates: tuple[Endpoint, ...]
    confidence: float

    @property
    def rel_diffs_pct(self) -> np.ndarray:
        return np.array([estimate.rel_diff_pct for estimate in self.estimates])

    @property
    def rel_diff_pct(self) -> float:
        return float(self.rel_diffs_pct.mean())

    @property
    def spread_pct(self) -> float:
        """The largest minus the smallest dense model's estimate."""
        return float(np.ptp(self.rel_diffs_pct))

    def _bound(self, level: float) -> float:
        diffs = self.rel_diffs_pct
        return student_t_quantile(level, len(diffs) - 1) * diffs.std(ddof=1) / math.sqrt(len(diffs))

    @property
    def ci_rel_pct(self) -> tuple[float, float]:
        half = self._bound(0.5 + self.confidence / 2)
        return self.rel_diff_pct - half, self.rel_diff_pct + half

    @property
    def one_sided(self) -> tuple[float, float]:
        half = self._bound(self.confidence)
        return self.rel_diff_pct - half, self.rel_diff_pct + half

    @property
    def claim(self) -> str:
        return claim_of(self.one_sided)


def over_dense(split: str, estimates: Sequence[tuple[int, Endpoint]], confidence: float) -> OverDense | None:
    """The dense models' estimates on `split` combined; None with fewer than two."""
    if len(estimates) < 2:
        return None
    return OverDense(split=split, dense_seeds=tuple(seed for seed, _ in estimates),
                     estimates=tuple(estimate for _, estimate in estimates), confidence=confidence)


def pooled(runs: Sequence[Runs]) -> Runs:
    """One level's runs after another along the utterance axis: corpus WER of the pool is the mean over
    levels of each level's WER, and a resample draws an utterance (or its speaker) at every level at once."""
    seeds = runs[0].seeds
    if any(level.seeds != seeds for level in runs):
        raise ValueError(f"pooled levels ran different seeds: {[level.seeds for level in runs]}")
    return Runs(seeds=seeds, errors=np.hstack([level.errors for level in runs]),
                utt_ids=pd.concat([level.utt_ids for level in runs], ignore_index=True),
                ref_words=pd.concat([level.ref_words for level in runs], ignore_index=True), source=runs[0].source,
                voices=np.concatenate([level.voices for level in runs]),
                speakers=np.concatenate([level.speakers for level in runs]),
                named_speakers=all(level.named_speakers for level in runs))


def endpoint(summaries: pd.DataFrame, split: str, decode: str, settings: BootstrapSettings,
             voices: Voices | None = None, omni_arm: str = "omni",
             individual_arm: str = "individual") -> Endpoint | None:
    """omni - individual pooled over the levels both arms have on `split`; None when they share none."""
    index = RunIndex(summaries, decode, voices)
    tags = sorted({tag for arm, tag in zip(summaries["arm"], summaries["tag"])
                   if arm == omni_arm and is_level_tag(tag)}, key=lambda tag: float(tag_level(tag)))
    found = [(index.get((omni_arm, tag), split), index.get((individual_arm, tag), split)) for tag in tags]
    kept = [(tag, omni, individual) for tag, (omni, individual) in zip(tags, found) if omni and individual]
    if not kept:
        return None
    pairs = [(omni, individual) for _, omni, individual in kept]
    one_level = kept[0][2]
    difference = pooled_difference(pairs, settings)
    one_sided = pooled_difference(pairs, replace(settings, confidence=2 * settings.confidence - 1))
    z = student_t_quantile(0.5 + settings.confidence / 2, math.inf)
    return Endpoint(split=split, levels=tuple(tag_level(tag) for tag, _, _ in kept), seeds=len(pairs[0][0].seeds),
                    unit=resampling_unit(one_level, settings), omni_wer=difference.wer_system,
                    individual_wer=difference.wer_baseline, abs_diff=difference.diff_abs,
                    rel_diff_pct=difference.diff_rel_pct, ci_rel_pct=difference.ci_rel_pct,
                    one_sided=one_sided.ci_rel_pct, seed_rel_diffs_pct=difference.seed_diffs_rel_pct,
                    degrees_of_freedom=difference.degrees_of_freedom,
                    test_resolves_rel_pct=z * difference.test_sd_rel_pct, utterances=len(one_level.utt_ids))


def pooled_difference(pairs: Sequence[tuple[Runs, Runs]], settings: BootstrapSettings) -> PairedDifference:
    """system - baseline pooled over the levels of (system, baseline) `pairs`, resampling the pool's units."""
    clusters = pooled_clusters(pairs[0][1], len(pairs), settings)
    return compare_runs(pooled([system for system, _ in pairs]), pooled([baseline for _, baseline in pairs]),
                        settings, clusters)


def pooled_clusters(one_level: Runs, levels: int, settings: BootstrapSettings) -> np.ndarray:
    """Resampling units of the pool: a level's units repeated per level (an utterance is drawn at every
    level at once, or its speaker where the split resamples speakers)."""
    units = resampling_clusters(one_level, settings)
    return np.tile(one_level.utt_ids.to_numpy() if units is None else units, levels)


def endpoint_frame(estimates: Sequence[tuple[int, Endpoint]], combined: Sequence[OverDense]) -> pd.DataFrame:
    """One row per split and dense model, then one per split over the dense models (dense_seed `all`)."""
    rows = [{"split": e.split, "dense_seed": seed, "levels": ";".join(e.levels), "seeds": e.seeds,
             "resampling_unit": e.unit, "omni_wer": e.omni_wer, "individual_wer": e.individual_wer,
             "abs_diff": e.abs_diff, "rel_diff_pct": e.rel_diff_pct, "rel_ci_low_pct": e.ci_rel_pct[0],
             "rel_ci_high_pct": e.ci_rel_pct[1], "one_sided_upper_pct": e.one_sided[1],
             "one_sided_lower_pct": e.one_sided[0], "claim": e.claim,
             "seed_rel_diffs_pct": seed_list(e.seed_rel_diffs_pct), "ci_dof": e.degrees_of_freedom,
             "test_resolves_rel_pct": e.test_resolves_rel_pct, "utterances": e.utterances,
             "utterances_to_resolve_2pct": e.utterances_to_resolve_2pct, "dense_rel_diffs_pct": ""}
            for seed, e in estimates]
    for c in combined:
        first = c.estimates[0]
        rows.append({"split": c.split, "dense_seed": OVER_DENSE, "levels": ";".join(first.levels),
                     "seeds": sum(e.seeds for e in c.estimates), "resampling_unit": first.unit,
                     "omni_wer": np.mean([e.omni_wer for e in c.estimates]),
                     "individual_wer": np.mean([e.individual_wer for e in c.estimates]),
                     "abs_diff": np.mean([e.abs_diff for e in c.estimates]), "rel_diff_pct": c.rel_diff_pct,
                     "rel_ci_low_pct": c.ci_rel_pct[0], "rel_ci_high_pct": c.ci_rel_pct[1],
                     "one_sided_upper_pct": c.one_sided[1], "one_sided_lower_pct": c.one_sided[0],
                     "claim": c.claim, "seed_rel_diffs_pct": "", "ci_dof": len(c.estimates) - 1,
                     "test_resolves_rel_pct": np.nan, "utterances": first.utterances,
                     "utterances_to_resolve_2pct": np.nan, "dense_rel_diffs_pct": seed_list(c.rel_diffs_pct)})
    return pd.DataFrame(rows, columns=list(PRIMARY_COLUMNS))


def endpoint_markdown(estimates: Sequence[tuple[int, Endpoint]], combined: Sequence[OverDense], decode: str,
                      settings: BootstrapSettings) -> str:
    """The primary endpoint first (over the dense models when there are several), then each split's pooled
    comparison per dense model (secondary) and what each split's test data can resolve."""
    confidence = f"{100 * settings.confidence:g} %"
    dense_seeds = list(dict.fromkeys(seed for seed, _ in estimates))
    primary = next((e for seed, e in estimates if e.split == PRIMARY_SPLIT and seed == dense_seeds[0]), None)
    overall = next((c for c in combined if c.split == PRIMARY_SPLIT), None)
    lines = ["### Primary endpoint", ""]
    if primary is None:
        lines.append(f"No {PRIMARY_SPLIT} comparison: the study evaluates no split of that name.")
    elif overall is not None:
        low, high = overall.ci_rel_pct
        per_dense = "; ".join(f"dense model {seed}: {e.rel_diff_pct:+.1f} % [{e.ci_rel_pct[0]:+.1f}, "
                              f"{e.ci_rel_pct[1]:+.1f}]" for seed, e in zip(overall.dense_seeds, overall.estimates))
        lines.append(
            f"**omni - individual on {PRIMARY_SPLIT}, WER pooled over levels {', '.join(primary.levels)}, over "
            f"{len(overall.estimates)} dense models: {overall.rel_diff_pct:+.1f} % relative [{low:+.1f}, {high:+.1f}] "
            f"({confidence} CI, t with {len(overall.estimates) - 1} degrees of freedom on the dense models' "
            f"spread)** ({per_dense}; spread {overall.spread_pct:.1f} points). The paper's claim (omni at least "
            f"{abs(PAPER_CLAIM_REL_PCT):g} % better): one-sided {confidence} bounds [{overall.one_sided[0]:+.1f}, "
            f"{overall.one_sided[1]:+.1f}] -> **{overall.claim}**.")
    else:
        low, high = primary.ci_rel_pct
        lines.append(
            f"**omni - individual on {PRIMARY_SPLIT}, WER pooled over levels {', '.join(primary.levels)}: "
            f"{primary.rel_diff_pct:+.1f} % relative [{low:+.1f}, {high:+.1f}] ({confidence} CI), "
            f"{100 * primary.abs_diff:+.2f} WER points absolute** ({100 * primary.omni_wer:.2f} vs "
            f"{100 * primary.individual_wer:.2f} %; {primary.seeds} training seeds, per seed "
            f"{', '.join(f'{d:+.1f}' for d in primary.seed_rel_diffs_pct) or 'unpaired'} %). The paper's claim "
            f"(omni at least {abs(PAPER_CLAIM_REL_PCT):g} % better): one-sided {confidence} bounds "
            f"[{primary.one_sided[0]:+.1f}, {primary.one_sided[1]:+.1f}] -> **{primary.claim}**.")
    lines += ["", "| split | dense model | levels | omni - ind. (rel. %) | CI | abs. (WER points) | claim "
              "| test data resolve (±%) | utterances | to resolve 2 % |", "|---|---|---|---|---|---|---|---|---|---|"]
    for seed, e in estimates:
        role = "primary" if e.split == PRIMARY_SPLIT and overall is None and seed == dense_seeds[0] else "secondary"
        lines.append(f"| {e.split} ({role}) | {seed} | {', '.join(e.levels)} | {e.rel_diff_pct:+.1f} | "
                     f"[{e.ci_rel_pct[0]:+.1f}, {e.ci_rel_pct[1]:+.1f}] | {100 * e.abs_diff:+.2f} | {e.claim} | "
                     f"{e.test_resolves_rel_pct:.1f} | {e.utterances} | {e.utterances_to_resolve_2pct:,.0f} |")
    for c in combined:
        role = "primary" if c.split == PRIMARY_SPLIT else "secondary"
        lines.append(f"| {c.split} ({role}) | all {len(c.estimates)} | {', '.join(c.estimates[0].levels)} | "
                     f"{c.rel_diff_pct:+.1f} | [{c.ci_rel_pct[0]:+.1f}, {c.ci_rel_pct[1]:+.1f}] | "
                     f"{100 * np.mean([e.abs_diff for e in c.estimates]):+.2f} | {c.claim} | | | |")
    uncovered = ("the one (synthetic) corpus and one machine's floating-point rounding" if combined else
                 "the one dense model every run starts from, the one (synthetic) corpus, and one machine's "
                 "floating-point rounding")
    lines += ["", f"Decode {decode}. Pooled: each arm's seed-mean WER averaged over the levels. Interval per dense "
              "model: the test bootstrap (resampling unit as in the table below) plus the seed part, t-based with "
              "Welch-Satterthwaite degrees of freedom (omni/results/bootstrap.py); over dense models: the mean of "
              "their estimates, t-based on their spread. 'test data resolve': the half-width of the test data's own "
              "interval, the smallest relative difference the split can tell from zero whatever the seeds; 'to "
              f"resolve 2 %': the split size whose own interval is ±2 %. What no interval here covers: {uncovered}. "
              "Every other cell of these tables is secondary.", ""]
    return "\n".join(lines) + "\n"


def write_primary(summary_paths: Sequence[str], splits: Sequence[str], decode: str, settings: BootstrapSettings,
                  csv_path: str, md_path: str, dense_models: Sequence[Mapping[str, Any]],
                  voices: Voices | None = None) -> None:
    """tables/primary.csv and .md: per dense model its own omni vs individual, pooled over levels, per split
    (`dense_models`: job_params.dense_comparisons), and over the dense models where there are several."""
    summaries = load_summaries(summary_paths)
    estimates, combined = [], []
    for split in splits:
        on_split = [(int(model["dense_seed"]), found) for model in dense_models
                    if (found := endpoint(summaries, split, decode, settings, voices, str(model["omni"]),
                                          str(model["individual"])))]
        estimates += on_split
        overall = over_dense(split, on_split, settings.confidence)
        if overall:
            combined.append(overall)
    write_dataframe(csv_path, endpoint_frame(estimates, combined))
    write_text(md_path, endpoint_markdown(estimates, combined, decode, settings))
