"""Cost accounting: what producing K pruned models really cost each arm, from measured records.

Sources are the cost records that training/extraction/search/evaluation jobs write
(omni.costs) and Snakemake's benchmark files. A record is authoritative; a benchmark only
fills in rules that write no record (data preparation) and cross-checks the rest. Device-hours
are kept in the unit they were measured in (GPU-hours or CPU core-hours) and never converted,
so every sum is per unit.
"""
from __future__ import annotations

import json
import os

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from omni.arms import arm_kind
from omni.job_names import DEVICE_METRICS, EVALUATE, EXTRACT_OMNI, TRAIN_CONTROL, TRAIN_DENSE, TRAIN_INDIVIDUAL, TRAIN_OMNI
from omni.study import seed_of_path

SECONDS_PER_HOUR = 3600.0
GPU_HOURS = "GPU-hours"
CPU_CORE_HOURS = "CPU core-hours"
UNIT_OF_DEVICE = {"cuda": GPU_HOURS, "cpu": CPU_CORE_HOURS}

# Stages of the totals, in display order; "other" collects rules this module does not know.
STAGES = ("data", "dense", "control", "individual", "omni", "search", "evaluation", "export", "other")
DATA_RULES = frozenset({"build_corpus", "manifest", "feature_stats", "tokenizer"})
JOB_COLUMNS = ["stage", "rule", "arm", "seed", "sparsity", "device", "device_count", "processes", "threads",
               "wall_s", "device_hours", "unit", "audio_hours", "peak_mem_mb", "source"]
DENSE_ITEM, INDIVIDUAL_ITEM, OMNI_ITEM, RATIO_ITEM = "dense (shared)", "individual", "omni", "individual / omni"
ARM_COLUMNS = ["arm", "paired_individual", "unit", "seeds", "jobs", "job_device_hours", "job_wall_s",
               "vs_one_individual_job", "vs_individual_arm"]
_RECORD_KEYS = ("job", "arm", "sparsity", "device_kind", "device_name", "device_count", "processes",
                "threads", "wall_s", "audio_hours", "peak_mem_mb", "device_hours", "device_hours_unit")
# What a benchmark file says when it could not sample the process (Snakemake writes "NA").
_BENCHMARK_NA = ["NA", "-"]


@dataclass(frozen=True)
class Accounting:
    """Everything the cost tables and the cost figure show."""

    jobs: pd.DataFrame        # one row per job (JOB_COLUMNS)
    totals: pd.DataFrame      # per stage and unit
    headline: pd.DataFrame    # cost of K pruned models per arm, per unit, and the ratio
    arms: pd.DataFrame        # per pruning arm: one training job next to one job of its paired individual arm
    crosscheck: pd.DataFrame  # per rule: record wall time vs benchmark wall time


def stage_of(rule: str, arm: str | None) -> str:
    """Which total a job counts towards; searched models' extractions belong to the search."""
    if rule in DATA_RULES:
        return "data"
    if rule == TRAIN_DENSE:
        return "dense"
    if rule == TRAIN_CONTROL:
        return "control"  # the dense-continued control: cost of neither arm, shown apart
    if rule == TRAIN_INDIVIDUAL:
        return "individual"
    if rule in (TRAIN_OMNI, EXTRACT_OMNI):
        return "omni"
    if rule.startswith("extract") or rule.startswith("search"):
        return "search"
    if rule.startswith(EVALUATE) or rule == DEVICE_METRICS:   # measuring models: WER, speed on a device
        return "evaluation"
    if rule.startswith("export"):
        return "export"
    return "other"


def load_cost_records(paths: Iterable[str | os.PathLike], results_dir: str | os.PathLike) -> pd.DataFrame:
    """One JOB_COLUMNS row per cost.json; a record without its unit is an error, not a guess."""
    rows = []
    for path in paths:
        record = json.loads(Path(path).read_text())
        missing = [key for key in _RECORD_KEYS if key not in record]
        if missing:
            raise ValueError(f"cost record {path} lacks {missing}")
        expected = UNIT_OF_DEVICE.get(record["device_kind"])
        if record["device_hours_unit"] != expected:
            raise ValueError(f"cost record {path}: unit {record['device_hours_unit']!r} does not match "
                             f"device kind {record['device_kind']!r}")
        rows.append({
            "stage": stage_of(record["job"], record["arm"]),
            "rule": record["job"],
            "arm": record["arm"],
            "seed": seed_column(path),
            "sparsity": record["sparsity"],
            "device": device_label(record["device_kind"], record["device_name"]),
            "device_count": record["device_count"],
            "processes": record["processes"],
            "threads": record["threads"],
            "wall_s": record["wall_s"],
            "device_hours": record["device_hours"],
            "unit": record["device_hours_unit"],
            "audio_hours": record["audio_hours"],
            "peak_mem_mb": record["peak_mem_mb"],
            "source": os.path.relpath(path, results_dir),
        })
    return pd.DataFrame(rows, columns=JOB_COLUMNS)


def seed_column(path: str | os.PathLike) -> float:
    """The training seed a job's file belongs to (omni.study.seed_of_path), NaN for shared jobs (data)."""
    seed = seed_of_path(path)
    return np.nan if seed is None else float(seed)


def device_label(kind: str, name: str) -> str:
    """`cpu (model name)` for CPUs, the GPU's own name for GPUs."""
    if kind == "cpu":
        return f"cpu ({name})" if name else "cpu"
    return name or kind


def load_benchmarks(paths: Iterable[str | os.PathLike], benchmark_dir: str | os.PathLike,
                    results_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per benchmark run of the given files: rule (from `<rule>.tsv` or `<rule>/...tsv` below
    `benchmark_dir`), wall and CPU seconds.

    Only the files of the jobs in the current study are read (omni.study.Study.benchmark_files), never
    the whole folder, which keeps files of jobs an earlier configuration ran. A listed file that
    does not exist (a job completed before its benchmark was kept) is reported and skipped.
    The arm is taken from the path when a folder below the rule is named like one
    (`export_model/{arm}/{tag}.tsv`), so per-model rules without records still count per arm.
    """
    root = Path(benchmark_dir)
    frames = []
    for path in sorted(Path(p) for p in paths):
        if not path.is_file():
            print(f"accounting: no benchmark file {path}; that job's cost is not counted", file=sys.stderr)
            continue
        relative = path.relative_to(root)
        rule = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        runs = pd.read_csv(path, sep="\t", na_values=_BENCHMARK_NA)
        arm = next((part for part in relative.parts[1:-1] if arm_kind(part)), None)
        frames.append(pd.DataFrame({
            "rule": rule,
            "arm": arm,
            "seed": seed_column(relative),
            "wall_s": runs["s"].astype(float),
            "cpu_s": runs["cpu_time"].astype(float),
            "max_rss_mb": runs["max_rss"].astype(float),
            "source": os.path.relpath(path, results_dir),
        }))
    if not frames:
        return pd.DataFrame(columns=["rule", "arm", "seed", "wall_s", "cpu_s", "max_rss_mb", "source"])
    return pd.concat(frames, ignore_index=True)


def benchmark_jobs(benchmarks: pd.DataFrame) -> pd.DataFrame:
    """JOB_COLUMNS rows for benchmark runs of rules that write no cost record.

    A benchmark knows neither the device nor the thread count, only the CPU time the job's
    processes used; that measured CPU time is the core-hours figure (NaN when Snakemake could
    not sample a very short job).
    """
    return pd.DataFrame({
        "stage": [stage_of(rule, arm) for rule, arm in zip(benchmarks["rule"], benchmarks["arm"])],
        "rule": benchmarks["rule"],
        "arm": benchmarks["arm"],
        "seed": benchmarks["seed"],
        "sparsity": np.nan,
        "device": "cpu",
        "device_count": 1,
        "processes": 1,
        "threads": np.nan,
        "wall_s": benchmarks["wall_s"],
        "device_hours": benchmarks["cpu_s"] / SECONDS_PER_HOUR,
        "unit": CPU_CORE_HOURS,
        "audio_hours": np.nan,
        "peak_mem_mb": benchmarks["max_rss_mb"],
        "source": benchmarks["source"],
    }, columns=JOB_COLUMNS)


def crosscheck(records: pd.DataFrame, benchmarks: pd.DataFrame) -> pd.DataFrame:
    """Per rule with both: wall seconds by the records vs by Snakemake (startup, I/O, resumes differ)."""
    ours = records.groupby("rule").agg(record_jobs=("wall_s", "size"), record_wall_s=("wall_s", "sum"))
    theirs = benchmarks.groupby("rule").agg(benchmark_runs=("wall_s", "size"),
                                            benchmark_wall_s=("wall_s", "sum"))
    both = ours.join(theirs, how="inner")
    both["benchmark_over_record"] = both["benchmark_wall_s"] / both["record_wall_s"]
    return both.reset_index()


def stage_totals(jobs: pd.DataFrame) -> pd.DataFrame:
    """Sums per stage and unit (a stage run on both CPU and GPU gets two rows)."""
    totals = (jobs.groupby(["stage", "unit"], sort=False)
              .agg(jobs=("wall_s", "size"), wall_s=("wall_s", "sum"),
                   device_hours=("device_hours", lambda hours: hours.sum(min_count=1)),
                   audio_hours=("audio_hours", lambda hours: hours.sum(min_count=1)),
                   peak_mem_mb=("peak_mem_mb", "max"))
              .reset_index())
    order = totals["stage"].map({stage: rank for rank, stage in enumerate(STAGES)})
    return totals.assign(_order=order).sort_values(["_order", "unit"]).drop(columns="_order").reset_index(drop=True)


def headline(jobs: pd.DataFrame) -> pd.DataFrame:
    """Cost of K pruned models: individual = its K training jobs; omni = supernet + K extractions.

    Per training seed: each arm ran once per seed, and the line gives the mean over its seeds
    (`seeds`), the cost of one study of K models. Dense training is shared by both arms and every
    seed, and shown on its own line. Each unit gets its own lines, and a ratio line (individual /
    omni, device-hours and wall seconds) where omni used it.
    """
    parts = {
        DENSE_ITEM: jobs["rule"] == TRAIN_DENSE,
        INDIVIDUAL_ITEM: (jobs["rule"] == TRAIN_INDIVIDUAL) & (jobs["arm"] == INDIVIDUAL_ITEM),
        OMNI_ITEM: jobs["rule"].isin([TRAIN_OMNI, EXTRACT_OMNI]) & (jobs["arm"] == OMNI_ITEM),
    }
    rows = []
    for unit in sorted(jobs.loc[np.logical_or.reduce(list(parts.values())), "unit"].unique()):
        in_unit = jobs["unit"] == unit
        line = {}
        for name, mask in parts.items():
            selected = jobs[mask & in_unit]
            seeds = max(1, selected["seed"].nunique())
            models = int((selected["rule"] == TRAIN_INDIVIDUAL).sum()
                         + (selected["rule"].str.startswith("extract")).sum())
            line[name] = {"item": name, "unit": unit, "seeds": seeds, "jobs": len(selected) / seeds,
                          "models": models / seeds, "wall_s": selected["wall_s"].sum() / seeds,
                          "device_hours": selected["device_hours"].sum() / seeds}
            rows.append(line[name])
        omni, individual = line[OMNI_ITEM], line[INDIVIDUAL_ITEM]
        if omni["device_hours"] > 0 and individual["jobs"] > 0:
            rows.append({"item": RATIO_ITEM, "unit": unit, "seeds": np.nan, "jobs": np.nan, "models": np.nan,
                         "wall_s": individual["wall_s"] / omni["wall_s"],
                         "device_hours": individual["device_hours"] / omni["device_hours"]})
    return pd.DataFrame(rows, columns=["item", "unit", "seeds", "jobs", "models", "wall_s", "device_hours"])


def arm_costs(jobs: pd.DataFrame, pairs: Mapping[str, str]) -> pd.DataFrame:
    """Per pruning arm and unit: what one of its training jobs cost (mean over jobs; an omni arm's job
    is its supernet plus its K extractions, per seed), next to one job of the individual arm it is
    compared with (`pairs`: omni arm -> individual arm) and to that arm's K jobs. Equal compute
    reads ~1.0 in `vs_one_individual_job`; the paper's claim is `vs_individual_arm` near 1/K."""
    training = jobs[jobs["rule"].isin([TRAIN_INDIVIDUAL, TRAIN_OMNI, EXTRACT_OMNI])]
    rows, per_job = [], {}
    for (arm, unit), selected in training.groupby(["arm", "unit"], sort=False):
        seeds = max(1, selected["seed"].nunique())
        supernets = selected["rule"] == TRAIN_OMNI
        jobs_per_seed = (supernets.sum() if supernets.any() else len(selected)) / seeds
        per_job[arm, unit] = {"arm": arm, "unit": unit, "seeds": seeds, "jobs": jobs_per_seed,
                              "job_device_hours": selected["device_hours"].sum() / seeds / jobs_per_seed,
                              "job_wall_s": selected["wall_s"].sum() / seeds / jobs_per_seed}
    for (arm, unit), row in per_job.items():
        paired = arm if arm.startswith(INDIVIDUAL_ITEM) else pairs.get(arm, INDIVIDUAL_ITEM)
        reference = per_job.get((paired, unit))
        one_job = row["job_device_hours"] / reference["job_device_hours"] if reference else np.nan
        whole_arm = one_job / reference["jobs"] if reference else np.nan
        rows.append({**row, "paired_individual": paired, "vs_one_individual_job": one_job,
                     "vs_individual_arm": whole_arm})
    return pd.DataFrame(rows, columns=ARM_COLUMNS)


def collect(cost_paths: Iterable[str | os.PathLike], benchmark_paths: Iterable[str | os.PathLike],
            benchmark_dir: str | os.PathLike, results_dir: str | os.PathLike,
            pairs: Mapping[str, str]) -> Accounting:
    """All jobs (records, plus benchmark runs of rules without records) and their summaries."""
    records = load_cost_records(cost_paths, results_dir)
    benchmarks = load_benchmarks(benchmark_paths, benchmark_dir, results_dir)
    unrecorded = benchmarks[~benchmarks["rule"].isin(set(records["rule"]))]
    jobs = pd.concat([frame for frame in (records, benchmark_jobs(unrecorded)) if not frame.empty],
                     ignore_index=True)
    jobs = jobs.assign(_order=jobs["stage"].map({stage: rank for rank, stage in enumerate(STAGES)}))
    jobs = jobs.sort_values(["_order", "rule", "arm", "seed", "sparsity", "source"], na_position="first")
    jobs = jobs.drop(columns="_order").reset_index(drop=True)
    return Accounting(jobs=jobs, totals=stage_totals(jobs), headline=headline(jobs), arms=arm_costs(jobs, pairs),
                      crosscheck=crosscheck(records, benchmarks))


def breakdown(jobs: pd.DataFrame) -> pd.DataFrame:
    """Device-hours per (arm, activity, unit) for the stacked cost figure.

    The arm axis answers "what did each arm cost end to end": data and dense (its training and
    its evaluation) are shared; a search and its extractions belong to its searched arm (their records
    carry it).
    """
    shared = jobs["stage"].isin(["data", "dense"]) | (jobs["arm"] == "dense") | jobs["arm"].isna()
    arm = np.where(shared, "shared", jobs["arm"].astype(str))
    activity = np.select(
        [jobs["stage"] == "data", jobs["rule"].str.startswith("train"), jobs["rule"].str.startswith("extract"),
         jobs["stage"] == "search", jobs["stage"] == "evaluation", jobs["stage"] == "export"],
        ["data", "training", "extraction", "search", "evaluation", "export"], default="other")
    frame = pd.DataFrame({"arm": arm, "activity": activity, "unit": jobs["unit"],
                          "device_hours": jobs["device_hours"]})
    return frame.groupby(["arm", "activity", "unit"], sort=False)["device_hours"].sum().reset_index()
