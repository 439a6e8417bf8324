"""The sparsity core: prunable names, nested rankings, schedule, and hard masks in training."""

from __future__ import annotations

import copy
import dataclasses
import io
import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torchaudio
from torch import Tensor, nn
from torch.nn.utils import prune
from torchaudio.models import RNNT

from omni import job_params
from omni.asr.model import blank_id, build_model, model_config_from
from omni.config import ConfigError
from omni.jobs.specs import mask_spec
from omni.sparsity.masking import MaskedParameters, ZeroedWeightMasks
from omni.sparsity.masks import (
    LayerRanking,
    count_kept,
    cubic_sparsity,
    masks_at,
    original_weight,
    prunable_parameter_names,
    rank_layers,
    sparsity_of,
    to_units,
)
from omni.sparsity.specs import MaskSpec
from tests.conftest import layered_config

CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.yaml"
SMALL_OVERRIDES = {"model": {"presets": {"tiny": {"num_layers": 2}}}}
NUM_SYMBOLS = 129
BATCH, FRAMES, TARGET_LENGTH = 2, 64, 5
SEED = 1234
LAYER_TYPES_PER_EMFORMER_LAYER = 5  # key/value, query, out_proj, two feed-forward linears
SHAPES = [("unstructured", [1, 1]), ("block", [1, 4]), ("block", [4, 1]), ("block", [4, 4]), ("block", [8, 1])]
PROPERTY_TRIALS = 60
GRID_STEP = 8  # every block shape above tiles multiples of 8
MAX_GRID_MULTIPLE = 12
RANDOM_LEVELS = 6


# ----------------------------------------------------------------------------------------------
# Shared fixtures (test_export imports these)
# ----------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny ops on 2 shared cores: one thread is ~50x faster than two contending ones."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def plain_masked_state_dict(masked: MaskedParameters) -> dict[str, Tensor]:
    """Plain torchaudio names, masked weights: what loads into a fresh model that never had masks."""
    masks = masked.masks()
    return {
        name: value * masks[name] if name in masks else value for name, value in masked.original_state_dict().items()
    }


def small_setup(seed: int = SEED) -> tuple[RNNT, dict[str, Any], dict[str, Any]]:
    """A 2-layer tiny RNN-T in eval mode (no dropout noise), its model config and study config."""
    config = layered_config(SMALL_OVERRIDES)
    model_config = model_config_from(job_params.model(config), num_symbols=NUM_SYMBOLS)
    torch.manual_seed(seed)
    return build_model(model_config).eval(), model_config, config


def fixed_batch(model_config: dict[str, Any]) -> dict[str, Tensor]:
    """Features padded by the right context with unpadded lengths; blank-prepended predictor input."""
    generator = torch.Generator().manual_seed(SEED)
    blank = blank_id(model_config)
    padded = FRAMES + model_config["right_context_length"]
    targets = torch.randint(0, blank, (BATCH, TARGET_LENGTH), generator=generator)
    target_lengths = torch.full((BATCH,), TARGET_LENGTH)
    return {
        "features": torch.randn(BATCH, padded, model_config["input_dim"], generator=generator),
        "lengths": torch.full((BATCH,), FRAMES),
        "predictor_input": torch.cat([torch.full((BATCH, 1), blank), targets], dim=1),
        "predictor_lengths": target_lengths + 1,
        "targets": targets,
        "target_lengths": target_lengths,
    }


def logits_of(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    logits, _, _, _ = model(batch["features"], batch["lengths"], batch["predictor_input"], batch["predictor_lengths"])
    return logits


def rnnt_loss_of(model: nn.Module, batch: dict[str, Tensor], blank: int) -> Tensor:
    logits, logit_lengths, _, _ = model(
        batch["features"], batch["lengths"], batch["predictor_input"], batch["predictor_lengths"]
    )
    return torchaudio.functional.rnnt_loss(
        logits, batch["targets"].int(), logit_lengths.int(), batch["target_lengths"].int(), blank=blank
    )


def mask_settings(config: dict[str, Any]) -> MaskSpec:
    """The study's prunable weights and units (sparsity.*), as a job is given them."""
    return mask_spec(job_params.masks(config))


def default_masks(model: nn.Module, config: dict[str, Any], sparsity: float) -> dict[str, Tensor]:
    names = prunable_parameter_names(model, mask_settings(config))
    return masks_at(rank_layers(model, names, "unstructured", [1, 1]), sparsity)


def premasked_copy(model: nn.Module, masks: dict[str, Tensor]) -> nn.Module:
    """The reference: a plain model whose weights were multiplied by the masks once."""
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for name, mask in masks.items():
            original_weight(reference, name).mul_(mask)
    return reference


# ----------------------------------------------------------------------------------------------
# Prunable names
# ----------------------------------------------------------------------------------------------


def test_default_prunable_names_are_the_emformer_matrices_in_model_order() -> None:
    model, model_config, config = small_setup()
    names = prunable_parameter_names(model, mask_settings(config))
    assert len(names) == LAYER_TYPES_PER_EMFORMER_LAYER * model_config["num_layers"]
    assert names == [n for n, p in model.named_parameters() if n in set(names)]
    assert all(
        n.startswith("transcriber.transformer.emformer_layers.") and p.ndim == 2
        for n, p in model.named_parameters()
        if n in names
    )
    assert "transcriber.transformer.emformer_layers.0.pos_ff.0.weight" not in names  # a 1-D LayerNorm


def test_include_flags_add_predictor_joiner_and_io_linears() -> None:
    model, _, config = small_setup()
    extended = dataclasses.replace(
        mask_settings(config), include_predictor=True, include_joiner=True, include_io_linears=True
    )
    base = set(prunable_parameter_names(model, mask_settings(config)))
    added = [n for n in prunable_parameter_names(model, extended) if n not in base]
    assert added == [
        "transcriber.input_linear.weight",
        "transcriber.output_linear.weight",
        "predictor.lstm_layers.0.x2g.weight",
        "predictor.lstm_layers.0.p2g.weight",
        "predictor.linear.weight",
        "joiner.linear.weight",
    ]


def test_no_match_names_the_config_key() -> None:
    model, _, config = small_setup()
    with pytest.raises(ConfigError, match=r"sparsity\.prunable"):
        prunable_parameter_names(model, dataclasses.replace(mask_settings(config), prunable=("^nothing$",)))


def test_prunable_names_unchanged_by_installed_masks() -> None:
    model, _, config = small_setup()
    names = prunable_parameter_names(model, mask_settings(config))
    MaskedParameters(model, default_masks(model, config, 0.5))
    assert prunable_parameter_names(model, mask_settings(config)) == names


# ----------------------------------------------------------------------------------------------
# Rankings and masks
# ----------------------------------------------------------------------------------------------


def _random_weight(rng: random.Random, generator: torch.Generator) -> Tensor:
    rows = GRID_STEP * rng.randint(1, MAX_GRID_MULTIPLE)
    cols = GRID_STEP * rng.randint(1, MAX_GRID_MULTIPLE)
    weight = torch.randn(rows, cols, generator=generator)
    return weight.round() if rng.random() < 0.5 else weight  # half the trials full of ties


def test_masks_are_nested_exact_and_block_constant_over_random_layers() -> None:
    rng = random.Random(SEED)
    generator = torch.Generator().manual_seed(SEED)
    for trial in range(PROPERTY_TRIALS):
        granularity, block = SHAPES[trial % len(SHAPES)]
        weight = _random_weight(rng, generator)
        ranking = LayerRanking(weight, granularity, block)
        block_size = block[0] * block[1]
        n_units = weight.numel() // block_size
        levels = sorted([0.0, 1.0] + [rng.random() for _ in range(RANDOM_LEVELS)])
        masks = [ranking.mask(s) for s in levels]
        for level, mask in zip(levels, masks):
            assert mask.shape == weight.shape and mask.dtype == torch.bool
            assert int(mask.sum()) == weight.numel() - round(level * n_units) * block_size
            units = to_units(mask, tuple(block)).flatten(2)
            assert torch.equal(units.all(dim=2), units.any(dim=2)), "mask not constant inside a block"
        for lower, higher in itertools.pairwise(masks):
            assert not (higher & ~lower).any(), "higher sparsity kept a weight the lower one pruned"


def test_ties_break_by_position_deterministically() -> None:
    weight = torch.ones(4, 4)
    mask = LayerRanking(weight, "unstructured", [1, 1]).mask(0.25)
    assert mask.flatten().tolist() == [False] * 4 + [True] * 12
    assert torch.equal(mask, LayerRanking(weight.clone(), "unstructured", [1, 1]).mask(0.25))


def test_unstructured_masks_match_torch_prune_l1() -> None:
    generator = torch.Generator().manual_seed(SEED)
    for rows, cols in [(16, 24), (64, 32), (7, 13)]:
        layer = nn.Linear(cols, rows)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(rows, cols, generator=generator))  # continuous: no ties
        ranking = LayerRanking(layer.weight, "unstructured", [1, 1])
        for level in [0.1, 0.33, 0.5, 0.8, 0.95]:
            peer = copy.deepcopy(layer)
            prune.l1_unstructured(peer, "weight", amount=level)
            assert torch.equal(ranking.mask(level), peer.weight_mask.bool()), (rows, cols, level)


def test_block_masks_keep_the_largest_l2_blocks() -> None:
    generator = torch.Generator().manual_seed(SEED)
    weight = torch.randn(8, 12, generator=generator)
    block = (2, 3)
    norms = [[float(weight[r : r + 2, c : c + 3].norm()) for c in range(0, 12, 3)] for r in range(0, 8, 2)]
    flat = torch.tensor(norms).flatten()
    kept_blocks = set(flat.argsort(descending=True)[:4].tolist())
    mask = LayerRanking(weight, "block", list(block)).mask(0.75)
    kept = {i for i, keep in enumerate(to_units(mask, block).flatten(2).all(dim=2).flatten().tolist()) if keep}
    assert kept == kept_blocks


def test_block_that_does_not_tile_names_key_and_layer() -> None:
    with pytest.raises(ConfigError, match=r"sparsity\.block_shape.*joiner\.linear\.weight"):
        LayerRanking(torch.randn(129, 256), "block", [4, 4], name="joiner.linear.weight")


def test_masks_at_takes_uniform_or_per_layer_levels() -> None:
    model, _, config = small_setup()
    names = prunable_parameter_names(model, mask_settings(config))
    rankings = rank_layers(model, names, "unstructured", [1, 1])
    allocation = {name: (0.9 if i % 2 else 0.3) for i, name in enumerate(names)}
    masks = masks_at(rankings, allocation)
    for name in names:
        half_unit = 0.5 / masks[name].numel()  # round(s * n) is off s * n by at most half a weight
        assert sparsity_of({name: masks[name]}) == pytest.approx(allocation[name], abs=half_unit)
    kept, total = count_kept(masks_at(rankings, 0.8))
    assert total == sum(original_weight(model, n).numel() for n in names)
    assert kept == total - sum(round(0.8 * original_weight(model, n).numel()) for n in names)
    with pytest.raises(KeyError, match="missing"):
        masks_at(rankings, {names[0]: 0.5})


def test_restricted_ranking_never_revives_a_pruned_weight() -> None:
    """Gradual pruning: weights move between updates, but a growing sparsity only removes more."""
    model, _, config = small_setup()
    names = prunable_parameter_names(model, mask_settings(config))
    generator = torch.Generator().manual_seed(SEED)
    masks = masks_at(rank_layers(model, names, "block", [4, 1]), 0.3)
    for level in [0.3, 0.5, 0.7, 0.9]:
        with torch.no_grad():
            for name in names:  # the pruned weights grow large: an unrestricted ranking would revive them
                weight = original_weight(model, name)
                weight.add_(torch.randn(weight.shape, generator=generator) * 10 * (~masks[name]))
        new = masks_at(rank_layers(model, names, "block", [4, 1], restrict_to=masks), level)
        assert all(not (new[n] & ~masks[n]).any() for n in names)
        assert sparsity_of(new) == pytest.approx(level, abs=1e-3)
        masks = new


# ----------------------------------------------------------------------------------------------
# Cubic schedule
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "expected_elapsed"),
    [
        (0, None),
        (9, None),  # before t0: initial
        (10, 0),
        (19, 0),  # quantised to the update interval
        (20, 10),
        (55, 40),
        (109, 90),
        (110, "end"),
        (500, "end"),  # from t0 + n dt on: final
    ],
)
def test_cubic_schedule_matches_zhu_gupta(step: int, expected_elapsed: int | str | None) -> None:
    initial, final, start, ramp, every = 0.1, 0.8, 10, 100, 10
    value = cubic_sparsity(step, final, initial, start, ramp_steps=ramp, update_every=every)
    if expected_elapsed is None:
        assert value == initial
    elif expected_elapsed == "end":
        assert value == final
    else:
        assert value == pytest.approx(final + (initial - final) * (1 - expected_elapsed / ramp) ** 3, abs=1e-12)


def test_cubic_schedule_defaults_start_from_dense() -> None:
    assert cubic_sparsity(0, 0.9, ramp_steps=60, update_every=10) == 0.0
    assert cubic_sparsity(30, 0.9, ramp_steps=60, update_every=10) == pytest.approx(0.9 * (1 - 0.5**3))
    assert cubic_sparsity(60, 0.9, ramp_steps=60, update_every=10) == 0.9
    assert cubic_sparsity(5, 0.9, ramp_steps=0, update_every=10) == 0.9


# ----------------------------------------------------------------------------------------------
# MaskedParameters
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask_dtype", [None, torch.bool])
def test_forward_equals_premasked_model(mask_dtype: torch.dtype | None) -> None:
    model, model_config, config = small_setup()
    masks = default_masks(model, config, 0.7)
    reference = premasked_copy(model, masks)
    MaskedParameters(model, masks, mask_dtype=mask_dtype)
    batch = fixed_batch(model_config)
    assert torch.equal(logits_of(model, batch), logits_of(reference, batch))


def test_pruned_positions_get_zero_gradient_and_stay_zero_under_adamw() -> None:
    model, model_config, config = small_setup()
    masks = default_masks(model, config, 0.8)
    masked = MaskedParameters(model, masks)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-2)
    batch = fixed_batch(model_config)
    for _ in range(3):
        optimizer.zero_grad()
        rnnt_loss_of(model, batch, blank_id(model_config)).backward()
        for name, mask in masks.items():
            grad = original_weight(model, name).grad
            assert not grad[~mask].any() and grad[mask].any(), name
        optimizer.step()
    for name, mask in masks.items():
        module_path, _, attr = name.rpartition(".")
        assert not getattr(model.get_submodule(module_path), attr)[~mask].any(), name
    plain = build_model(model_config).eval()
    plain.load_state_dict(plain_masked_state_dict(masked))
    assert torch.equal(logits_of(plain, batch), logits_of(model, batch))


def test_set_masks_swaps_in_place() -> None:
    model, model_config, config = small_setup()
    low, high = default_masks(model, config, 0.5), default_masks(model, config, 0.9)
    reference_high = premasked_copy(model, high)
    masked = MaskedParameters(model, low)
    batch = fixed_batch(model_config)
    low_logits = logits_of(model, batch)
    buffers = {
        n: model.get_submodule(n.rpartition(".")[0]).parametrizations.weight[0].mask.data_ptr() for n in masked.names
    }
    masked.set_masks(high)
    assert torch.equal(logits_of(model, batch), logits_of(reference_high, batch))
    assert {
        n: model.get_submodule(n.rpartition(".")[0]).parametrizations.weight[0].mask.data_ptr() for n in masked.names
    } == buffers
    masked.set_masks(low)
    assert torch.equal(logits_of(model, batch), low_logits)
    assert all(torch.equal(masked.masks()[n], low[n]) for n in low)
    with pytest.raises(KeyError):
        masked.set_masks({n: low[n] for n in list(low)[1:]})
    with pytest.raises(ValueError, match="shape"):
        masked.set_masks({n: m[:1] for n, m in low.items()})


def test_plain_state_dict_loads_into_a_fresh_torchaudio_model() -> None:
    model, model_config, config = small_setup()
    masks = default_masks(model, config, 0.7)
    masked = MaskedParameters(model, masks)
    fresh = build_model(model_config).eval()
    state = plain_masked_state_dict(masked)
    assert set(state) == set(fresh.state_dict())
    fresh.load_state_dict(state)
    batch = fixed_batch(model_config)
    assert torch.equal(logits_of(fresh, batch), logits_of(model, batch))
    assert all(not state[n][~m].any() for n, m in masks.items())


def _train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, Tensor], blank: int) -> None:
    optimizer.zero_grad()
    rnnt_loss_of(model, batch, blank).backward()
    optimizer.step()


def test_original_state_dict_resumes_training_exactly() -> None:
    model, model_config, config = small_setup()
    blank, batch = blank_id(model_config), fixed_batch(model_config)
    masked = MaskedParameters(model, default_masks(model, config, 0.6))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    _train_step(model, optimizer, batch, blank)
    buffer = io.BytesIO()
    torch.save(
        {"model": masked.original_state_dict(), "optimizer": optimizer.state_dict(), "masks": masked.masks()}, buffer
    )
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    assert set(checkpoint["model"]) == set(build_model(model_config).state_dict())
    assert any(checkpoint["model"][n][~m].any() for n, m in checkpoint["masks"].items()), "originals are unmasked"

    resumed, _, _ = small_setup(seed=SEED + 1)
    resumed_masked = MaskedParameters(resumed, checkpoint["masks"])
    resumed_masked.load_original_state_dict(checkpoint["model"])
    resumed_optimizer = torch.optim.AdamW(resumed.parameters(), lr=1e-2)
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    _train_step(model, optimizer, batch, blank)
    _train_step(resumed, resumed_optimizer, batch, blank)
    assert all(
        torch.equal(a, b)
        for a, b in zip(masked.original_state_dict().values(), resumed_masked.original_state_dict().values())
    )


@pytest.mark.parametrize("permanent", [True, False])
def test_remove_leaves_plain_parameters(permanent: bool) -> None:
    model, _, config = small_setup()
    masks = default_masks(model, config, 0.5)
    originals = {n: original_weight(model, n).detach().clone() for n in masks}
    masked = MaskedParameters(model, masks)
    parameter_ids = {n: id(original_weight(model, n)) for n in masks}
    masked.remove(permanent=permanent)
    assert {n for n, _ in model.named_parameters()} == set(dict(build_model(small_setup()[1]).named_parameters()))
    for name, mask in masks.items():
        weight = model.get_parameter(name)
        assert id(weight) == parameter_ids[name]  # an optimizer holding it stays valid
        assert torch.equal(weight, originals[name] * mask if permanent else originals[name])


def test_masks_follow_model_dtype_and_device_moves() -> None:
    model, model_config, config = small_setup()
    masks = default_masks(model, config, 0.7)
    reference = premasked_copy(model, masks).double()
    masked = MaskedParameters(model, masks)
    model.double()
    batch = {k: (v.double() if v.is_floating_point() else v) for k, v in fixed_batch(model_config).items()}
    assert torch.equal(logits_of(model, batch), logits_of(reference, batch))
    masked.set_masks(masks)  # bool masks copied into float64 buffers
    assert torch.equal(logits_of(model, batch), logits_of(reference, batch))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_masks_on_cuda() -> None:
    model, model_config, config = small_setup()
    masks = default_masks(model, config, 0.7)
    reference = premasked_copy(model, masks)
    masked = MaskedParameters(model, masks)
    model.to("cuda")
    masked.set_masks(masks)  # CPU masks into CUDA buffers
    batch = fixed_batch(model_config)
    cuda_batch = {k: v.to("cuda") for k, v in batch.items()}
    torch.testing.assert_close(logits_of(model, cuda_batch).cpu(), logits_of(reference, batch))


# ----------------------------------------------------------------------------------------------
# ZeroedWeightMasks (the individual arm)
# ----------------------------------------------------------------------------------------------


def test_zeroed_weights_train_exactly_like_the_parametrization() -> None:
    """Same effective weights, step for step, under AdamW with weight decay and a mask change
    between steps; pruned weights are exact zeros and get zero gradients throughout."""
    model, model_config, config = small_setup()
    twin = copy.deepcopy(model)
    blank, batch = blank_id(model_config), fixed_batch(model_config)
    first, second = default_masks(model, config, 0.5), default_masks(model, config, 0.8)
    zeroed = ZeroedWeightMasks(model, first)
    parametrized = MaskedParameters(twin, first)
    optimizers = [torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=1e-2) for m in (model, twin)]
    for step in range(4):
        if step == 2:
            zeroed.set_masks(second)
            parametrized.set_masks(second)
        masks = second if step >= 2 else first
        for net, optimizer in zip((model, twin), optimizers):
            optimizer.zero_grad()
            rnnt_loss_of(net, batch, blank).backward()
        for name, mask in masks.items():
            grad = model.get_parameter(name).grad
            assert not grad[~mask].any() and grad[mask].any(), name
        for optimizer in optimizers:
            optimizer.step()
        zeroed.enforce()
        plain = plain_masked_state_dict(parametrized)
        for name, value in model.state_dict().items():
            assert torch.equal(value, plain[name]), (step, name)
        assert all(not model.get_parameter(n)[~m].any() for n, m in masks.items())
    assert all(torch.equal(zeroed.masks()[n], second[n]) for n in second)
    assert torch.equal(logits_of(model, batch), logits_of(twin, batch))


def test_zeroed_weights_reject_unknown_names_and_wrong_shapes() -> None:
    model, _, config = small_setup()
    masks = default_masks(model, config, 0.5)
    with pytest.raises(KeyError, match="no parameters named"):
        ZeroedWeightMasks(model, {"not.a.weight": next(iter(masks.values()))})
    zeroed = ZeroedWeightMasks(model, masks)
    with pytest.raises(KeyError):
        zeroed.set_masks({n: masks[n] for n in list(masks)[1:]})
    with pytest.raises(ValueError, match="shape"):
        zeroed.set_masks({n: m[:1] for n, m in masks.items()})
