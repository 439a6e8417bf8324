"""The search job: score sub-networks of a trained supernet on the dev subset with the
evolution of omni.sparsity.search, and write the candidates, the Pareto front and the best
allocation per budget.

Scoring masks one model copy in place from stored dense weights (w * mask, the very product
`extract_subnetwork` computes), so a candidate costs a decode, not a re-extraction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from omni.asr.evaluate import decode_split
from omni.asr.frontend import Frontend
from omni.asr.model import ModelArtefact, build_model
from omni.atomic import load_torch, write_dataframe, write_json
from omni.costs import CostMeter
from omni.data.batches import UtteranceSet
from omni.data.features import LogMel, load_feature_stats
from omni.data.manifest import read_manifest
from omni.data.tokenizer import Tokenizer
from omni.job_names import SEARCH
from omni.jobs.specs import Section, mask_spec
from omni.runtime import resolve_device, seed_everything, set_threads
from omni.sparsity.export import export_bytes, export_compact
from omni.sparsity.extract import trained_rankings
from omni.sparsity.masks import masks_at, original_weight
from omni.sparsity.search import (
    Evaluated,
    EvolutionarySearch,
    EvolutionSettings,
    SearchResult,
    SearchSpace,
    make_budgets,
)
from omni.sparsity.specs import MaskSpec

EXPORT_DTYPE = torch.float32
SECONDS_PER_HOUR = 3600.0
LAYER_COLUMN_PREFIX = "s:"
DEV_WER = "dev_wer"


# ----------------------------------------------------------------------------------------------
# Scoring sub-networks of a real supernet
# ----------------------------------------------------------------------------------------------


@dataclass
class DevSubset:
    """What decoding the search's dev part in the fitness decode needs (built once)."""

    utterances: UtteranceSet
    frontend: Frontend
    tokenizer: Tokenizer
    batch_size: int
    decode: str
    beam_width: int | None

    @property
    def audio_seconds(self) -> float:
        return sum(self.utterances.num_samples) / self.utterances.sample_rate


def load_dev_subset(
    search: Mapping[str, Any],
    logmel: Mapping[str, Any],
    manifest: Path,
    feature_stats: Path,
    tokenizer: Path,
    right_context_length: int,
    device: torch.device,
) -> DevSubset:
    """The search's part of dev (omni.data.dev_split), in utt_id order whatever the manifest order."""
    table = read_manifest(manifest).sort_values("utt_id", kind="stable")
    frontend = Frontend(LogMel.from_section(logmel), load_feature_stats(feature_stats), right_context_length).to(device)
    return DevSubset(
        UtteranceSet(table, None, logmel["sample_rate"], cache_audio=True),
        frontend,
        Tokenizer(tokenizer),
        search["batch_size"],
        search["decode"],
        search.get("beam_width"),
    )


class SubnetworkScorer:
    """Sub-networks of one supernet artefact, scored by masking a single model copy in place."""

    def __init__(self, supernet: ModelArtefact, masks: MaskSpec, device: torch.device) -> None:
        self.model_config = supernet["model_config"].copy()
        self.masks = masks
        self.device = device
        self.model = build_model(self.model_config)
        self.model.load_state_dict(supernet["state_dict"])
        self.model.to(device).eval()
        self.rankings = trained_rankings(supernet)  # the sub-networks the supernet last trained, as extraction cuts
        self._dense = {name: original_weight(self.model, name).detach().clone() for name in self.rankings}

    def space(self, levels: Sequence[float]) -> SearchSpace:
        total = sum(p.numel() for p in self.model.parameters())
        return SearchSpace.from_rankings(self.rankings, levels, total)

    def apply(self, allocation: Mapping[str, float]) -> dict[str, Tensor]:
        """Mask the model copy to `allocation`; returns the masks."""
        masks = masks_at(self.rankings, allocation)
        with torch.no_grad():
            for name, mask in masks.items():
                weight = original_weight(self.model, name)
                weight.copy_(self._dense[name] * mask.to(weight.dtype))
        return masks

    def state_dict(self, allocation: Mapping[str, float]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(masked state dict, masks): what `extract_subnetwork` returns for the same allocation."""
        masks = self.apply(allocation)
        # Copies: the live tensors change with the next candidate.
        return {name: t.detach().to("cpu", copy=True) for name, t in self.model.state_dict().items()}, masks

    def dev_wer(self, allocation: Mapping[str, float], dev: DevSubset) -> float:
        self.apply(allocation)
        _, summary = decode_split(
            self.model,
            self.model_config,
            dev.frontend,
            dev.utterances,
            dev.tokenizer,
            dev.decode,
            dev.beam_width,
            dev.batch_size,
            self.device,
            "search",
        )
        return summary["wer"]

    def export_bytes(self, allocation: Mapping[str, float]) -> int:
        """Bytes of the fp32 compact export, serialised exactly as the export rule writes it."""
        state, masks = self.state_dict(allocation)
        payload = export_compact(
            state,
            masks,
            self.model_config,
            EXPORT_DTYPE,
            self.masks.granularity,
            self.masks.block_shape,
        )
        return export_bytes(payload)


# ----------------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------------


def short_layer_names(names: Sequence[str]) -> list[str]:
    """Drop the dotted prefix and suffix all names share (`transcriber...emformer_layers.` and
    `.weight`): short columns, still unique because only common parts go. A lone name shares
    nothing with anything, so it stays whole."""
    if len(names) < 2:
        return list(names)
    parts = [name.split(".") for name in names]
    shortest = min(len(p) for p in parts)
    head = 0
    while head < shortest - 1 and len({p[head] for p in parts}) == 1:
        head += 1
    tail = 0
    while tail < shortest - head - 1 and len({p[-1 - tail] for p in parts}) == 1:
        tail += 1
    return [".".join(p[head : len(p) - tail]) for p in parts]


def layer_columns(space: SearchSpace) -> list[str]:
    return [f"{LAYER_COLUMN_PREFIX}{short}" for short in short_layer_names(space.names)]


def candidates_frame(entries: Sequence[Evaluated], space: SearchSpace) -> pd.DataFrame:
    rows = [
        {
            "iteration": e.iteration,
            "budget": e.budget,
            "params_kept": e.params_kept,
            "export_bytes": e.export_bytes,
            "sparsity": e.sparsity,
            DEV_WER: e.fitness,
            "eval_s": e.eval_s,
            "elapsed_s": e.elapsed_s,
            **dict(zip(layer_columns(space), e.genome)),
        }
        for e in entries
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "iteration",
            "budget",
            "params_kept",
            "export_bytes",
            "sparsity",
            DEV_WER,
            "eval_s",
            "elapsed_s",
            *layer_columns(space),
        ],
    )


def best_summary(result: SearchResult) -> dict[str, Any]:
    """Per budget tag: the best allocation (full layer names, what extraction takes), its size
    and fitness, and the uniform model's, which the best can never be worse than."""
    summary = {}
    for budget in result.budgets:
        best, uniform = result.best(budget), result.uniform(budget)
        summary[budget.tag] = {
            "level": budget.level,
            "max_params": budget.max_params,
            "allocation": result.space.allocation(best.genome),
            **_entry_fields(best),
            "uniform": _entry_fields(uniform),
        }
    return summary


def _entry_fields(entry: Evaluated) -> dict[str, Any]:
    return {
        "params_kept": entry.params_kept,
        "export_bytes": entry.export_bytes,
        "sparsity": entry.sparsity,
        DEV_WER: entry.fitness,
    }


@dataclass
class SearchPaths:
    supernet: Path
    manifest: Path
    feature_stats: Path
    tokenizer: Path
    pareto: Path
    history: Path
    best: Path
    cost: Path


def write_search_outputs(result: SearchResult, paths: SearchPaths) -> None:
    write_dataframe(paths.history, candidates_frame(result.history, result.space))
    write_dataframe(paths.pareto, candidates_frame(result.pareto(), result.space))
    write_json(paths.best, best_summary(result))


def evolution_settings(search: Section) -> EvolutionSettings:
    """The rule section omni.job_params.search -> the evolution's settings (its fitness and budgets are
    the job's own)."""
    names = [field.name for field in dataclasses.fields(EvolutionSettings)]
    return EvolutionSettings(**{name: search[name] for name in names})


def run_search_job(
    search: Mapping[str, Any],
    masks: Mapping[str, Any],
    logmel: Mapping[str, Any],
    paths: SearchPaths,
    threads: int,
    arm: str,
) -> SearchResult:
    """The search stage: score sub-networks of the supernet on the dev subset, write its outputs.
    The sections are the rule's params (omni.job_params.search / .masks / .logmel); `arm` is the
    searched arm its cost counts towards."""
    set_threads(threads)
    seed_everything(search["seed"])
    device = resolve_device(search["device"])
    meter = CostMeter(SEARCH, arm, None, device, threads)
    scorer = SubnetworkScorer(load_torch(paths.supernet), mask_spec(masks), device)
    dev = load_dev_subset(
        search,
        logmel,
        paths.manifest,
        paths.feature_stats,
        paths.tokenizer,
        scorer.model_config["right_context_length"],
        device,
    )
    space = scorer.space(search["levels"])
    evolution = EvolutionarySearch(
        space,
        make_budgets(space, search["budgets"]),
        evolution_settings(search),
        fitness=lambda allocation: scorer.dev_wer(allocation, dev),
        export_size=scorer.export_bytes,
    )
    result = evolution.run()
    write_search_outputs(result, paths)
    evaluations = len(result.history)
    meter.finish(
        paths.cost,
        steps=0,
        audio_hours=evaluations * dev.audio_seconds / SECONDS_PER_HOUR,
        extra={
            "evaluations": evaluations,
            "cache_hits": result.cache_hits,
            "iterations_completed": result.iterations_completed,
            "stopped_early": result.stopped_early,
            "max_evaluations": search["evaluations"],
            "dev_utterances": len(dev.utterances),
        },
    )
    return result
