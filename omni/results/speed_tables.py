"""Speed on a device, per model and path: what it costs streaming eagerly in PyTorch (dense, sparse
kernels, int8) and in the runtimes a device ships (ONNX Runtime, ExecuTorch; fp32, int8), measured
by omni.jobs.device_metrics against the best dense runtime path, next to its size and its WER on
each path, as a table and a figure."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from omni.results.figures import PANEL_INCHES, arm_styles, save  # first: it chooses matplotlib's backend
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from omni.arms import arm_order  # noqa: E402
from omni.atomic import write_dataframe, write_text  # noqa: E402
from omni.results.formatting import (  # noqa: E402
    BYTES_PER_MB,
    PERCENT,
    fmt_int,
    fmt_size,
    fmt_sparsity,
    fmt_wer,
    markdown,
    number_formatter,
)
from omni.results.wer_tables import load_summaries  # noqa: E402

MODEL_KEYS = ["arm", "tag"]
RUN_KEYS = ["arm", "seed", "tag"]
fmt_ms = number_formatter(".2f")
fmt_rtf = number_formatter(".3f")
fmt_ratio = number_formatter(".2f")
EAGER_PATHS = ("dense", "sparse", "int8")
RUNTIME_SIZE_SUFFIX = "_file_bytes"   # a runtime path's record has its files' size: how its columns are found
PATH_LABELS = {"dense": "eager dense", "sparse": "eager sparse kernels", "int8": "eager sparse + int8",
               "onnx": "ONNX Runtime fp32", "onnx_int8": "ONNX Runtime int8",
               "executorch": "ExecuTorch fp32", "executorch_int8": "ExecuTorch int8"}


def load_records(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """One row per model run; kernel counts flattened to `kernels_<name>` columns."""
    rows = []
    for path in paths:
        record = json.loads(Path(path).read_text())
        kernels = record.pop("kernels")
        rows.append({**record, **{f"kernels_{name}": count for name, count in kernels.items()}})
    return pd.DataFrame(rows)


def speed_table(records: pd.DataFrame, summaries: pd.DataFrame, split: str, decode: str) -> pd.DataFrame:
    """Every model run's record with WERs in %: `wer`, the fp32 model's on the timed split in the
    tables' decode (the figure's), `fp32_wer` in the decode the exports were scored with (for the
    precision columns). The speed-ups are the job's paired ones (omni.inference.speed)."""
    table = records.copy()
    for column, wanted in (("wer", decode), ("fp32_wer", records["wer_decode"].iloc[0])):
        scored = summaries[(summaries["split"] == split) & (summaries["decode"] == wanted)]
        table = table.merge(scored[RUN_KEYS + ["wer"]].rename(columns={"wer": column}), on=RUN_KEYS, how="left")
    for column in ("wer", "fp32_wer", "fp16_wer", "int8_wer", *(f"{path}_wer" for path in runtime_paths(table))):
        table[column] = table[column] * PERCENT
    return table.sort_values(RUN_KEYS, key=_model_order).reset_index(drop=True)


def _model_order(column: pd.Series) -> pd.Series:
    return column.map(arm_order) if column.name == "arm" else column


def model_means(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over training seeds per model (arm, tag): what the markdown and the figure show."""
    numeric = table.select_dtypes("number").columns.drop("seed")
    means = table.groupby(MODEL_KEYS, sort=False)[list(numeric)].mean().reset_index()
    return means.assign(seeds=table.groupby(MODEL_KEYS, sort=False)["seed"].nunique().to_numpy())


def runtime_paths(table: pd.DataFrame) -> list[str]:
    return [column[: -len(RUNTIME_SIZE_SUFFIX)] for column in table.columns if column.endswith(RUNTIME_SIZE_SUFFIX)]


def best_runtime(table: pd.DataFrame) -> pd.Series:
    """Per model (arm, tag): the 1-thread reference path its jobs chose most often (the fastest runtime)."""
    return table.groupby(MODEL_KEYS, sort=False)["reference_t1"].agg(lambda names: names.mode().iloc[0])


def path_rows(table: pd.DataFrame) -> pd.DataFrame:
    """One row per model and path (means over training seeds): the long form the markdown shows."""
    means = model_means(table)
    reference = best_runtime(table)
    rows = []
    for _, model in means.iterrows():
        for path in [*EAGER_PATHS, *runtime_paths(table)]:
            eager = path in EAGER_PATHS
            wer = {"dense": "fp16_wer", "sparse": "fp16_wer", "int8": "int8_wer"}.get(path, f"{path}_wer")
            rows.append({
                "arm": model["arm"], "model": model["tag"], "seeds": model["seeds"], "sparsity": model["sparsity"],
                "path": PATH_LABELS.get(path, path), "reference": reference[(model["arm"], model["tag"])] == path,
                "chunk_ms": model[f"{path}_t1_chunk_ms_mean"], "p95_ms": model[f"{path}_t1_chunk_ms_p95"],
                "rtf": model[f"{path}_t1_rtf"], "speedup_t1": model[f"{path}_speedup_t1"],
                "speedup_tjob": model[f"{path}_speedup_tjob"],
                "installed_mb": (model["export_bytes"] if eager else model[f"{path}_file_bytes"]) / BYTES_PER_MB,
                "download_mb": float("nan") if eager else model[f"{path}_download_bytes"] / BYTES_PER_MB,
                "peak_mb": model[f"{path}_peak_rss_mb"], "model_mb": model[f"{path}_model_rss_mb"],
                "wer": model[wer], "decoded": "batched, full utterance" if eager else "streamed from the audio",
                "same_hypotheses": model.get(f"{path}_same_hypotheses", 1.0),
            })
    return pd.DataFrame(rows)


def speed_markdown(table: pd.DataFrame, split: str, decode: str) -> str:
    rows = path_rows(table)
    threads = int(table["job_threads"].iloc[0])
    shown = pd.DataFrame({
        "arm": rows["arm"], "model": rows["model"], "sparsity": rows["sparsity"].map(fmt_sparsity),
        "path": [f"**{path}** (reference)" if reference else path
                 for path, reference in zip(rows["path"], rows["reference"])],
        "chunk ms (p95)": [f"{fmt_ms(mean)} ({fmt_ms(p95)})" for mean, p95 in zip(rows["chunk_ms"], rows["p95_ms"])],
        "RTF": rows["rtf"].map(fmt_rtf),
        "speed-up vs reference": rows["speedup_t1"].map(fmt_ratio),
        f"same, {threads} threads": rows["speedup_tjob"].map(fmt_ratio),
        "installed MB": rows["installed_mb"].map(fmt_size), "download MB": rows["download_mb"].map(fmt_size),
        "peak MB (model)": [f"{fmt_int(peak)} ({fmt_int(model)})" for peak, model in zip(rows["peak_mb"],
                                                                                        rows["model_mb"])],
        "WER %": rows["wer"].map(fmt_wer), "decoded": rows["decoded"],
        "same hypotheses": [fmt_int(share * PERCENT) + " %" for share in rows["same_hypotheses"]],
    })
    utterances, audio = int(table["utterances"].iloc[0]), float(table["audio_seconds"].iloc[0])
    wer_decode = table["wer_decode"].iloc[0]
    note = (f"Each model streamed greedily, chunk by chunk (segment + look-ahead), on one CPU thread unless "
            f"named: {utterances} utterances of {split} ({audio:.1f} s of audio), features computed beforehand. "
            f"Eager paths run the fp16 export upcast in PyTorch: as a dense model, with each masked linear on the "
            f"kernel that timed fastest here (sparse kernels), and that with its remaining dense linears in "
            f"dynamic int8. Runtime paths run the model's exported programs (omni.deploy) in ONNX Runtime or "
            f"ExecuTorch + XNNPACK, whose kernels do not skip zeros. The reference of each model is its fastest "
            f"runtime path on 1 thread (the best dense runtime: what a device engineer would ship instead); "
            f"speed-up: the median over utterances of the reference's time / the path's on the same utterance "
            f"(the paths take turns utterance by utterance). Chunk ms: mean per chunk (p95: its 95th "
            f"percentile); RTF: compute seconds per audio second. Installed MB: the fp16 export (eager) or the "
            f"runtime's program files; download MB: those files gzip -9. Peak MB: the decoding process's peak "
            f"resident memory (model: how far loading and decoding took it above the process before the model). "
            f"WER: all of {split}; eager paths in the batched {wer_decode} decode (fp16 export; int8 path), "
            f"runtime paths streamed from the audio through their own front end as `transcribe` does; the fp32 "
            f"model's own {decode} WER is in the CSV (`wer`). 'same hypotheses': timed utterances transcribed as "
            f"the eager dense path does. Means over training seeds; timings are this machine's.")
    return f"{markdown(shown)}\n\n{note}\n"


def speed_figure(table: pd.DataFrame, split: str) -> Figure:
    """Per arm: WER against the per-chunk latency of each model's reference path (its best runtime, 1
    thread), against the sparse kernels' speed-up over that reference (paired within each job: > 1 only
    where sparsity beats the best dense runtime), and against the reference's installed size."""
    means = model_means(table)
    reference = best_runtime(table)
    means = means.assign(reference=[reference[(arm, tag)] for arm, tag in zip(means["arm"], means["tag"])])
    pick = lambda row, suffix: row[f"{row['reference']}{suffix}"]   # noqa: E731
    means["reference_ms"] = means.apply(lambda row: pick(row, "_t1_chunk_ms_mean"), axis=1)
    means["reference_mb"] = means.apply(
        lambda row: (row["export_bytes"] if row["reference"] in EAGER_PATHS else pick(row, "_file_bytes"))
        / BYTES_PER_MB, axis=1)
    styles = arm_styles(means["arm"])
    figure, (latency, speedup, size) = plt.subplots(1, 3, figsize=(3 * PANEL_INCHES[0], PANEL_INCHES[1]),
                                                    sharey=True)
    for arm, rows in means.groupby("arm", sort=False):
        if arm not in styles:
            continue
        rows = rows.sort_values("sparsity")
        latency.plot(rows["reference_ms"], rows["wer"], **styles[arm])
        speedup.plot(rows["sparse_speedup_t1"], rows["wer"], **{**styles[arm], "label": None})
        size.plot(rows["reference_mb"], rows["wer"], **{**styles[arm], "label": None})
    speedup.axvline(1.0, color="grey", linewidth=0.8)
    latency.set_xlabel("ms per streaming chunk, best runtime, 1 thread")
    speedup.set_xlabel("eager sparse kernels' speed-up over the best runtime (paired)")
    size.set_xlabel("installed MB, best runtime")
    latency.set_ylabel(f"WER % ({split})")
    latency.legend(fontsize=8)
    for axis in (latency, speedup, size):
        axis.grid(alpha=0.3)
    figure.suptitle("WER against latency, speed-up and size on a device (means over training seeds)")
    return figure


def write_speed_outputs(record_paths: Iterable[str | os.PathLike], summary_paths: Iterable[str | os.PathLike],
                        split: str, decode: str, outputs: dict[str, str | os.PathLike]) -> None:
    """outputs keys: csv, md, figure."""
    table = speed_table(load_records(record_paths), load_summaries(summary_paths), split, decode)
    write_dataframe(outputs["csv"], table)
    write_text(outputs["md"], speed_markdown(table, split, decode))
    save(speed_figure(table, split), outputs["figure"])
