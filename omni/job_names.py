"""The study's kinds of job by name. A rule is named after its kind, and the name is also its benchmark
folder and its cost record's `job` field, which the cost account reads; this is the one spelling in the
library (the rule files declare the same names to Snakemake)."""

from __future__ import annotations

TRAIN_DENSE = "train_dense"
TRAIN_CONTROL = "train_control"
TRAIN_INDIVIDUAL = "train_individual"
TRAIN_OMNI = "train_omni"
EXTRACT_OMNI = "extract_omni"
EXTRACT_SEARCHED = "extract_searched"
SEARCH = "search"
EVALUATE = "evaluate"
EXPORT_MODEL = "export_model"
EXPORT_RUNTIMES = "export_runtimes"
DEVICE_METRICS = "device_metrics"
