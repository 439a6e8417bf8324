"""Structured units (feed-forward neurons, attention heads): one order per group shared by all its
weights, so every level removes whole units from every member; nested levels; the unit's score over all
it carries; re-rankings that never revive a unit; per-layer vectors that give a group one level."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
import torch

from omni import job_params
from omni.asr.decode import StreamingChunks, greedy_streaming
from omni.asr.frontend import Frontend
from omni.asr.model import LAYER_WIDTHS, blank_id, build_model, load_model
from omni.atomic import load_torch
from omni.config import ConfigError
from omni.data.features import LogMel, load_feature_stats
from omni.data.tokenizer import Tokenizer
from omni.deploy.bundle import read_bundle
from omni.deploy.export import export_bundle
from omni.deploy.programs import build_programs
from omni.deploy.recognizer import load_programs, recognize_frames
from omni.jobs.runtime_export import RuntimeExportPaths, run_runtime_export_job
from omni.jobs.specs import individual_job, supernet_job
from omni.jobs.training import run_training_job
from omni.sparsity.export import export_compact, save_compact
from omni.sparsity.extract import extract_subnetwork
from omni.sparsity.layerwise import allocation_at_size
from omni.sparsity.masks import (
    LayerRanking,
    allocation_units,
    masks_at,
    original_weight,
    prunable_parameter_names,
    rank_layers,
    rerank_within_levels,
)
from omni.sparsity.search import SearchSpace
from omni.sparsity.slicing import slice_structured
from omni.sparsity.structured import HEADS, NEURONS, unit_groups
from tests.conftest import PreparedData, paths, training_setup
from tests.test_deploy import BLANK_BIAS_SHIFT, _features, _utterances
from tests.test_sparsity import fixed_batch, logits_of, mask_settings, one_thread, small_setup  # noqa: F401 (fixture)

LEVELS = (0.3, 0.5, 0.7, 0.8, 0.9)
STRUCTURED_MASKS = {"granularity": "structured"}


def structured_setup():
    model, model_config, config = small_setup()
    masks_cfg = dataclasses.replace(mask_settings(config), **STRUCTURED_MASKS)
    names = prunable_parameter_names(model, masks_cfg)
    return model, model_config, masks_cfg, names


def pruned_units(group, masks) -> list[set[int]]:
    """Per member, the group units whose every weight in that member is zero in the mask."""
    found = []
    for member in group.members:
        mask = masks[member.name]
        rows, cols = member.unit
        blocks = mask.reshape(mask.shape[0] // rows, rows, mask.shape[1] // cols, cols).permute(0, 2, 1, 3)
        blocks = blocks.reshape(-1, rows * cols)
        assert torch.equal(blocks.all(dim=1), blocks.any(dim=1)), f"{member.name}: a unit is partly pruned"
        found.append({unit for unit, kept in zip(member.unit_of_block, blocks.any(dim=1).tolist()) if not kept})
    return found


def test_every_level_prunes_whole_units_from_every_member_nested() -> None:
    model, model_config, masks_cfg, names = structured_setup()
    groups = unit_groups(model, names)
    assert [g.kind for g in groups] == [HEADS, NEURONS] * model_config["num_layers"]
    assert {g.units for g in groups if g.kind == HEADS} == {model_config["num_heads"]}
    assert {g.units for g in groups if g.kind == NEURONS} == {model_config["ffn_dim"]}
    rankings = rank_layers(model, names, "structured", [1, 1])
    previous: dict[str, set[int]] = {}
    for level in LEVELS:
        masks = masks_at(rankings, level)
        for group in groups:
            per_member = pruned_units(group, masks)
            assert all(units == per_member[0] for units in per_member), f"{group.name}: members disagree"
            assert len(per_member[0]) == round(level * group.units), (group.name, level)
            assert previous.get(group.name, set()) <= per_member[0], f"{group.name}: {level} not nested"
            previous[group.name] = per_member[0]


def test_a_unit_is_scored_by_all_the_weights_it_carries() -> None:
    """A neuron small in the first linear but large in the second outlives one small in both, and the
    pruned one is the smallest by its L2 norm over both."""
    model, _, _, names = structured_setup()
    group = next(g for g in unit_groups(model, names) if g.kind == NEURONS)
    first, second = (original_weight(model, m.name) for m in group.members)
    with torch.no_grad():
        first.mul_(10.0)
        second.mul_(10.0)
        first[3].fill_(1e-3)  # neuron 3: tiny input weights, large output weights
        second[:, 5].fill_(1e-3)  # neuron 5: tiny output weights...
        first[5].fill_(1e-3)  # ...and tiny input weights
    masks = masks_at(rank_layers(model, names, "structured", [1, 1]), 1 / group.units)
    assert pruned_units(group, masks)[0] == {5}
    norms = first.square().sum(dim=1) + second.square().sum(dim=0)
    assert int(norms.argmin()) == 5


def test_a_pruned_unit_contributes_nothing_whatever_its_bias_and_input_weights() -> None:
    """What makes slicing exact: the outputs of a masked model do not depend on a pruned neuron's or
    head's remaining parameters (biases, and in the masked model nothing else survives)."""
    model, model_config, masks_cfg, names = structured_setup()
    masks = masks_at(rank_layers(model, names, "structured", [1, 1]), 0.5)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name in masks:
                parameter.mul_(masks[name])
    batch = fixed_batch(model_config)
    reference = logits_of(model, batch)
    layer = "transcriber.transformer.emformer_layers.0"
    neurons = next(g for g in unit_groups(model, names) if g.name == f"{layer}.neurons")
    heads = next(g for g in unit_groups(model, names) if g.name == f"{layer}.heads")
    pruned_neuron = min(pruned_units(neurons, masks)[0])
    pruned_head = min(pruned_units(heads, masks)[0])
    head_dim = model_config["encoding_dim"] // model_config["num_heads"]
    rows = slice(pruned_head * head_dim, (pruned_head + 1) * head_dim)
    with torch.no_grad():
        model.get_submodule(f"{layer}.pos_ff.1").bias[pruned_neuron] += 5.0
        attention = model.get_submodule(f"{layer}.attention")
        attention.emb_to_query.bias[rows] += 5.0
        attention.emb_to_key_value.bias[rows] += 5.0
    assert torch.allclose(logits_of(model, batch), reference, atol=1e-5)


def test_restricted_and_settled_rerankings_never_revive_a_unit() -> None:
    model, _, _, names = structured_setup()
    rankings = rank_layers(model, names, "structured", [1, 1])
    groups = unit_groups(model, names)
    at_half = masks_at(rankings, 0.5)
    with torch.no_grad():  # the pruned units' weights grow large: a plain re-ranking would revive them
        for name, mask in at_half.items():
            original_weight(model, name)[~mask] = 100.0
    restricted = masks_at(rank_layers(model, names, "structured", [1, 1], restrict_to=at_half), 0.7)
    settled = rerank_within_levels(model, rankings, [0.5])
    for group in groups:
        before = pruned_units(group, at_half)[0]
        assert before <= pruned_units(group, restricted)[0], group.name
        assert before <= pruned_units(group, masks_at(settled, 0.7))[0], group.name
        assert before == pruned_units(group, masks_at(settled, 0.5))[0], group.name


def test_rankings_round_trip_with_their_group() -> None:
    model, _, _, names = structured_setup()
    rankings = rank_layers(model, names, "structured", [1, 1])
    restored = {name: LayerRanking.from_state_dict(r.state_dict()) for name, r in rankings.items()}
    for name in names:
        assert restored[name].group == rankings[name].group is not None
        assert torch.equal(restored[name].mask(0.7), rankings[name].mask(0.7)), name


def test_per_layer_vectors_and_the_search_give_a_group_one_level() -> None:
    model, _, _, names = structured_setup()
    rankings = rank_layers(model, names, "structured", [1, 1])
    units = allocation_units(rankings)
    assert len(units) == len(unit_groups(model, names)) and sum(map(len, units.values())) == len(names)
    allocation = allocation_at_size(rankings, 0.7, (0.5, 0.9), torch.Generator().manual_seed(0))
    for members in units.values():
        assert len({allocation[name] for name in members}) == 1, members
    space = SearchSpace.from_rankings(rankings, (0.5, 0.9), total_params=10**7)
    assert space.names == tuple(units)
    genome = tuple(0.5 if i % 2 else 0.9 for i in range(len(space.names)))
    expanded = space.allocation(genome)
    masks = masks_at(rankings, expanded)
    pruned = sum(int((~mask).sum()) for mask in masks.values())
    assert pruned == space.params_pruned(genome)


def test_structured_needs_every_member_prunable_and_names_the_key() -> None:
    model, _, masks_cfg, names = structured_setup()
    without_out_proj = [name for name in names if not name.endswith("out_proj.weight")]
    with pytest.raises(ConfigError, match=r"sparsity\.prunable.*heads.*out_proj"):
        rank_layers(model, without_out_proj, "structured", [1, 1])
    with pytest.raises(ConfigError, match=r"sparsity\.prunable.*joiner\.linear\.weight.*neurons and heads"):
        rank_layers(model, [*names, "joiner.linear.weight"], "structured", [1, 1])


def test_both_arms_train_structured_and_the_supernet_extracts_whole_units(
    prepared: PreparedData, dense_model: Path, tmp_path: Path
) -> None:
    config = json.loads(json.dumps(prepared.config))
    config["sparsity"]["granularity"] = "structured"
    config["omni"]["mask_update_every"] = 2
    masks_cfg = job_params.masks(config)
    target = 0.5
    individual = paths(prepared, tmp_path / "individual", init=dense_model)
    run_training_job(
        training_setup(config, "individual"),
        individual_job("individual", target, {**job_params.individual(config), "steps": 6}, masks_cfg),
        individual,
        1,
    )
    omni = paths(prepared, tmp_path / "omni", init=dense_model)
    run_training_job(
        training_setup(config, "omni"), supernet_job("omni", job_params.supernet(config), masks_cfg), omni, 1
    )
    artefact = load_torch(individual.model_out)
    supernet = load_torch(omni.model_out)
    model, _ = load_model(individual.model_out)
    groups = unit_groups(model, list(artefact["masks"]))
    for masks in (artefact["masks"], extract_subnetwork(supernet, target)[1]):
        for group in groups:
            per_member = pruned_units(group, masks)
            assert all(units == per_member[0] for units in per_member), group.name
            assert len(per_member[0]) == round(target * group.units), group.name


# ----------------------------------------------------------------------------------------------
# Sliced into a smaller dense model
# ----------------------------------------------------------------------------------------------

SLICE_TOLERANCE = 1e-5
PROGRAM_TOLERANCE = 1e-4  # the deploy programs' bound (tests/test_deploy.py)


def _masked_copy(model: torch.nn.Module, masks) -> torch.nn.Module:
    masked = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, parameter in masked.named_parameters():
            if name in masks:
                parameter.mul_(masks[name])
    return masked


def _allocations(rankings) -> dict[str, object]:
    """A uniform level, and a per-layer vector under which the layers keep different numbers of heads
    (one layer none at all: it keeps one with zero output) and of neurons."""
    units = allocation_units(rankings)
    vector = {}
    for index, members in enumerate(units.values()):
        level = {0: 1.0, 1: 0.2, 2: 0.0, 3: 0.9}[index % 4]
        vector.update(dict.fromkeys(members, level))
    return {"uniform 0.5": 0.5, "per-layer": vector}


@pytest.fixture(scope="module")
def trained_structured(prepared: PreparedData, dense_model: Path):
    model, artefact = load_model(dense_model)
    model_config = artefact["model_config"]
    with torch.no_grad():
        model.joiner.linear.bias[blank_id(model_config)] -= BLANK_BIAS_SHIFT
    masks_cfg = dataclasses.replace(mask_settings(prepared.config), **STRUCTURED_MASKS)
    names = prunable_parameter_names(model, masks_cfg)
    frontend = Frontend(
        LogMel.from_section(job_params.logmel(prepared.config)),
        load_feature_stats(prepared.feature_stats),
        model_config["right_context_length"],
    )
    return model.eval(), model_config, rank_layers(model, names, "structured", [1, 1]), frontend


def test_the_sliced_model_streams_as_the_masked_model_on_real_utterances(trained_structured) -> None:
    model, model_config, rankings, frontend = trained_structured
    chunker = StreamingChunks(model_config["segment_length"], model_config["right_context_length"])
    for label, allocation in _allocations(rankings).items():
        masks = masks_at(rankings, allocation)
        masked = _masked_copy(model, masks)
        sliced, sliced_config = slice_structured(model, model_config, masks)
        widths = sliced_config[LAYER_WIDTHS]
        kept_masked = sum(int(m.sum()) for m in masks.values())
        prunable = sum(m.numel() for m in masks.values())
        dense_params = sum(p.numel() for p in model.parameters())
        sliced_params = sum(p.numel() for p in sliced.parameters())
        assert sliced_params < dense_params - (prunable - kept_masked) // 2, label
        rebuilt = build_model(sliced_config)
        rebuilt.load_state_dict(sliced.state_dict())
        for path in _utterances(3):
            feats = _features(frontend, path)
            chunks = chunker.split(feats, feats.size(1))
            assert len(chunks) >= 10
            states = [None, None]
            with torch.inference_mode():
                for chunk, valid in chunks:
                    expected, lengths, states[0] = masked.transcribe_streaming(chunk, torch.tensor([valid]), states[0])
                    got, _, states[1] = rebuilt.eval().transcribe_streaming(chunk, torch.tensor([valid]), states[1])
                    frames = int(lengths[0])
                    torch.testing.assert_close(
                        got[:, :frames],
                        expected[:, :frames],
                        rtol=0,
                        atol=SLICE_TOLERANCE,
                        msg=lambda m, where=f"{label}, {path.name}": f"{where}: {m}",
                    )
        if label == "per-layer":
            assert len({w["heads"] for w in widths}) > 1, "the vector gives layers different head counts"


def test_the_sliced_model_exports_to_a_runtime_that_decodes_as_the_masked_model(
    trained_structured, prepared: PreparedData, tmp_path: Path
) -> None:
    """Its encoder program (layers of different widths in one padded cache) equals the masked model's
    streaming, and ONNX Runtime's greedy transcript equals PyTorch's."""
    model, model_config, rankings, frontend = trained_structured
    masks = masks_at(rankings, _allocations(rankings)["per-layer"])
    masked = _masked_copy(model, masks)
    sliced, sliced_config = slice_structured(model, model_config, masks)
    programs = build_programs(sliced, sliced_config, frontend)
    assert (
        programs.shape.key_width < model_config["encoding_dim"]
        or len(set(w["heads"] for w in sliced_config[LAYER_WIDTHS])) > 1
    )
    bundle = export_bundle(sliced, sliced_config, frontend, Tokenizer(prepared.tokenizer), tmp_path / "b", ("onnx",))
    runtime = load_programs(bundle, "onnx")
    chunker = StreamingChunks(model_config["segment_length"], model_config["right_context_length"])
    for path in _utterances(2):
        feats = _features(frontend, path)
        state = programs.examples()["encoder"][1:]
        reference_state = None
        with torch.inference_mode():
            for chunk, valid in chunker.split(feats, feats.size(1)):
                expected, lengths, reference_state = masked.transcribe_streaming(
                    chunk, torch.tensor([valid]), reference_state
                )
                encodings, *state = programs.encoder(chunk, *state)
                frames = int(lengths[0])
                torch.testing.assert_close(encodings[:, :frames], expected[:, :frames], rtol=0, atol=PROGRAM_TOLERANCE)
        expected_tokens = greedy_streaming(masked, feats, feats.size(1), blank_id(model_config), chunker)
        assert len(expected_tokens) > 10, "the search emits: the comparison means something"
        assert recognize_frames(bundle, runtime, feats[0].numpy()).tokens == expected_tokens, path.name


def test_the_runtime_export_job_slices_a_structured_model(
    trained_structured, prepared: PreparedData, tmp_path: Path
) -> None:
    """From the compact export (as the pipeline's export_runtimes rule): a structured model's bundle is a
    smaller model than the dense one's, an unstructured one's is not."""
    model, model_config, rankings, _ = trained_structured
    masks = masks_at(rankings, 0.5)
    state = {name: value * masks[name] if name in masks else value for name, value in model.state_dict().items()}
    sizes = {}
    for granularity in ("structured", "unstructured"):
        export = tmp_path / f"{granularity}.pt"
        save_compact(export, export_compact(state, masks, model_config, torch.float32, granularity, [1, 1]))
        bundle_dir = tmp_path / granularity
        run_runtime_export_job(
            ["onnx"],
            job_params.logmel(prepared.config),
            RuntimeExportPaths(
                export=export, feature_stats=prepared.feature_stats, tokenizer=prepared.tokenizer, bundle=bundle_dir
            ),
        )
        bundle = read_bundle(bundle_dir)
        sizes[granularity] = sum(bundle.program_file("onnx", name).stat().st_size for name in ("encoder",))
        heads = model_config["num_heads"]
        expected_width = model_config["encoding_dim"] // heads * (heads - round(0.5 * heads))
        assert bundle.shape.cache_width == (
            expected_width if granularity == "structured" else model_config["encoding_dim"]
        )
    assert sizes["structured"] < 0.7 * sizes["unstructured"], sizes
