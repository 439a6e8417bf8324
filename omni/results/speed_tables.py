"""Speed on a device, per model: what its fp16 export costs streaming on the dense, the sparse and
the int8 path (omni.jobs.device_metrics), next to its size and its WER at each precision, as a
table and a figure."""
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
PATHS = ("dense", "sparse", "int8")


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
    for column in ("wer", "fp32_wer", "fp16_wer", "int8_wer"):
        table[column] = table[column] * PERCENT
    return table.sort_values(RUN_KEYS, key=_model_order).reset_index(drop=True)


def _model_order(column: pd.Series) -> pd.Series:
    return column.map(arm_order) if column.name == "arm" else column


def model_means(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over training seeds per model (arm, tag): what the markdown and the figure show."""
    numeric = table.select_dtypes("number").columns.drop("seed")
    means = table.groupby(MODEL_KEYS, sort=False)[list(numeric)].mean().reset_index()
    return means.assign(seeds=table.groupby(MODEL_KEYS, sort=False)["seed"].nunique().to_numpy())


def speed_markdown(table: pd.DataFrame, split: str, decode: str) -> str:
    means = model_means(table)
    threads = int(table["job_threads"].iloc[0])
    shown = pd.DataFrame({
        "arm": means["arm"], "model": means["tag"], "seeds": means["seeds"].map(fmt_int),
        "sparsity": means["sparsity"].map(fmt_sparsity),
        "export MB": (means["export_bytes"] / BYTES_PER_MB).map(fmt_size),
        "WER % fp32 / fp16 / int8": joined(means, ("fp32_wer", "fp16_wer", "int8_wer"), fmt_wer),
        "chunk ms dense / sparse / int8": joined(means, [f"{path}_t1_chunk_ms_mean" for path in PATHS], fmt_ms),
        "p95 ms dense / sparse / int8": joined(means, [f"{path}_t1_chunk_ms_p95" for path in PATHS], fmt_ms),
        "speed-up sparse / int8": joined(means, ("sparse_speedup_t1", "int8_speedup_t1"), fmt_ratio),
        f"speed-up {threads} threads": joined(means, ("sparse_speedup_tjob", "int8_speedup_tjob"), fmt_ratio),
        "RTF dense / sparse / int8": joined(means, [f"{path}_t1_rtf" for path in PATHS], fmt_rtf),
        "sparse linears": joined(means, ("sparse_linears", "masked_linears"), fmt_int, "/"),
        "peak MB dense / sparse / int8": joined(means, [f"{path}_peak_rss_mb" for path in PATHS], fmt_int),
        "model MB dense / sparse / int8": joined(means, [f"{path}_model_rss_mb" for path in PATHS], fmt_int),
        "same hypotheses sparse / int8": joined(means, ("sparse_same_hypotheses", "int8_same_hypotheses"),
                                                lambda share: fmt_int(share * PERCENT) + " %"),
    })
    utterances, audio = int(table["utterances"].iloc[0]), float(table["audio_seconds"].iloc[0])
    wer_decode = table["wer_decode"].iloc[0]
    note = (f"Each model's fp16 export streamed greedily, chunk by chunk (segment + look-ahead), on one CPU "
            f"thread unless named: {utterances} utterances of {split} ({audio:.1f} s of audio), features "
            f"computed beforehand. Dense path: the export as a dense model; sparse path: each masked linear on "
            f"the kernel that timed fastest here (dense where none was faster; 'sparse linears' counts the "
            f"others); int8 path: the sparse path with its remaining dense linears in dynamic int8. Chunk ms: "
            f"mean per chunk (p95: its 95th percentile); speed-up: the median over utterances of the dense "
            f"path's time / the path's on the same utterance (the paths take turns utterance by utterance); "
            f"RTF: compute seconds per audio second. Peak MB: the decoding process's peak resident memory; model MB: how far "
            f"loading and decoding took it above the process before the model. 'same hypotheses': utterances "
            f"transcribed as the dense path does. WER: all of {split}, {wer_decode}, of the fp32 model (its "
            f"evaluation), the fp16 export and the int8 path. Means over training seeds; timings are this "
            f"machine's.")
    return f"{markdown(shown)}\n\n{note}\n"


def joined(means: pd.DataFrame, columns: Iterable[str], formatter, separator: str = " / ") -> list[str]:
    """One cell per row of several quantities side by side, e.g. `12.10 / 6.02 / 4.33`."""
    return [separator.join(formatter(value) for value in values) for values in zip(*(means[c] for c in columns))]


def speed_figure(table: pd.DataFrame, split: str) -> Figure:
    """WER against the sparse path's speed-up over dense on 1 thread, and against export size, per arm.
    The speed-up, not the latency: it is paired within each job, while absolute times of jobs run at
    different moments of a shared machine differ by more than the models do."""
    means = model_means(table)
    styles = arm_styles(means["arm"])
    figure, (speedup, size) = plt.subplots(1, 2, figsize=(2 * PANEL_INCHES[0], PANEL_INCHES[1]), sharey=True)
    for arm, rows in means.groupby("arm", sort=False):
        if arm not in styles:
            continue
        rows = rows.sort_values("sparsity")
        speedup.plot(rows["sparse_speedup_t1"], rows["wer"], **styles[arm])
        size.plot(rows["export_bytes"] / BYTES_PER_MB, rows["wer"], **{**styles[arm], "label": None})
    speedup.axvline(1.0, color="grey", linewidth=0.8)
    speedup.set_xlabel("sparse path's speed-up over dense per streaming chunk, 1 thread (paired)")
    size.set_xlabel("fp16 export (MB)")
    speedup.set_ylabel(f"WER % ({split})")
    speedup.legend(fontsize=8)
    for axis in (speedup, size):
        axis.grid(alpha=0.3)
    figure.suptitle("WER against speed and size on a device (means over training seeds)")
    return figure


def write_speed_outputs(record_paths: Iterable[str | os.PathLike], summary_paths: Iterable[str | os.PathLike],
                        split: str, decode: str, outputs: dict[str, str | os.PathLike]) -> None:
    """outputs keys: csv, md, figure."""
    table = speed_table(load_records(record_paths), load_summaries(summary_paths), split, decode)
    write_dataframe(outputs["csv"], table)
    write_text(outputs["md"], speed_markdown(table, split, decode))
    save(speed_figure(table, split), outputs["figure"])
