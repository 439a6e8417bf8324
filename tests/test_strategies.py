"""Supernet training strategies: level sampling weights (fixed or by loss), per-layer vectors, and
what the optimizer does to weights no sub-network of a step kept."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from omni import job_params
from omni.asr.model import build_model, model_config_from
from omni.asr.trainer import PlainLoss
from omni.config import ConfigError
from omni.config_checks import check_study
from omni.jobs.specs import supernet_job
from omni.jobs.training import run_training_job, strategy_for
from omni.sparsity.layerwise import LayerwiseSampling, allocation_at_size
from omni.sparsity.masks import LayerRanking, count_kept, masks_at, original_weight
from omni.sparsity.supernet import (
    PASS_LAYERWISE,
    PASS_LEVEL,
    LevelSampler,
    LevelWeights,
    SupernetGradients,
)
from tests.conftest import PreparedData, layered_config, paths, training_setup
from tests.test_sparsity import NUM_SYMBOLS, SMALL_OVERRIDES, fixed_batch, logits_of, mask_settings, small_setup

LEVELS = [0.5, 0.7, 0.8, 0.9]


def _uniform_sampler() -> LevelSampler:
    return LevelSampler(
        strategy="uniform",
        levels=LEVELS,
        level_space="discrete",
        continuous_range=(0.5, 0.9),
        random_levels=0,
        warmup_steps=0,
        update_every=1,
    )


def _draws(weights: LevelWeights, count: int = 4000) -> dict[float, float]:
    generator = torch.Generator().manual_seed(0)
    drawn = [_uniform_sampler().sample(0, generator, weights.current())[0] for _ in range(count)]
    return {level: drawn.count(level) / count for level in LEVELS}


def test_fixed_level_weights_follow_the_configured_level_order() -> None:
    # configured in the order of sparsity.levels, which need not be sorted
    shares = _draws(LevelWeights([7.0, 1.0, 1.0, 1.0], [0.9, 0.5, 0.7, 0.8]))
    assert shares[0.9] == pytest.approx(0.7, abs=0.03)
    assert all(shares[level] == pytest.approx(0.1, abs=0.02) for level in (0.5, 0.7, 0.8))
    assert _draws(LevelWeights(None, LEVELS))[0.9] == pytest.approx(0.25, abs=0.03)


def test_fixed_level_weights_keep_their_levels_through_the_jobs_own_spec() -> None:
    # the job's path: rule section (levels in config order) -> supernet_spec (levels sorted) -> its strategy
    config = layered_config(
        SMALL_OVERRIDES,
        {"sparsity": {"levels": [0.9, 0.5, 0.7, 0.8]}, "omni": {"level_weights": [7.0, 1.0, 1.0, 1.0]}},
    )
    model = build_model(model_config_from(job_params.model(config), num_symbols=NUM_SYMBOLS))
    job = supernet_job("omni", job_params.supernet(config), job_params.masks(config))
    assert job.supernet.levels == (0.5, 0.7, 0.8, 0.9)
    strategy = strategy_for(job, seed=0)(model)
    shares = _draws(strategy.level_weights)
    assert shares[0.9] == pytest.approx(0.7, abs=0.03)
    assert all(shares[level] == pytest.approx(0.1, abs=0.02) for level in (0.5, 0.7, 0.8))


def test_loss_weights_draw_uniformly_until_every_level_trained_then_favour_the_hardest() -> None:
    weights = LevelWeights("loss", LEVELS)
    for level, loss in [(0.5, 1.0), (0.7, 1.0), (0.8, 1.0)]:
        weights.observe(level, loss)
    assert weights.current() is None
    weights.observe(0.9, 7.0)
    weights.observe(0.33, 99.0)  # a capped warm-up level is no configured level: not counted
    assert _draws(weights)[0.9] == pytest.approx(0.7, abs=0.03)
    weights.observe(0.9, 0.0)  # an exponential average, not the last loss
    assert float(weights.current()[-1]) == pytest.approx(0.9 * 7.0)
    restored = LevelWeights("loss", LEVELS)
    restored.load_state_dict(weights.state_dict())
    assert torch.equal(restored.current(), weights.current())


@pytest.mark.parametrize(
    ("omni", "named"),
    [
        ({"level_weights": [1.0, 2.0]}, r"omni\.level_weights.*2 weights for 4 levels"),
        ({"level_weights": "loss", "level_space": "continuous"}, r"omni\.level_weights.*continuous"),
    ],
)
def test_level_weights_that_do_not_fit_the_levels_are_named(omni: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        check_study(layered_config({"omni": omni}))


# ---------------------------------------------------------------- per-layer sampling

CHOICES = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def _rankings(granularity: str = "unstructured", block_shape: tuple[int, int] = (1, 4)) -> dict[str, LayerRanking]:
    generator = torch.Generator().manual_seed(1)
    shapes = {"a": (64, 32), "b": (32, 128), "c": (96, 64), "d": (16, 16)}
    return {
        name: LayerRanking(torch.randn(shape, generator=generator), granularity, block_shape, name=name)
        for name, shape in shapes.items()
    }


@pytest.mark.parametrize(
    ("granularity", "block_shape"), [("unstructured", (1, 4)), ("block", (1, 4)), ("block", (4, 4))]
)
def test_a_per_layer_vector_prunes_exactly_the_uniform_levels_units(granularity: str, block_shape: tuple) -> None:
    rankings = _rankings(granularity, block_shape)
    generator = torch.Generator().manual_seed(2)
    for level in (0.5, 0.7, 0.8, 0.9):
        uniform_kept, _ = count_kept(masks_at(rankings, level))
        on_grid = 0
        for _ in range(25):
            allocation = allocation_at_size(rankings, level, CHOICES, generator)
            kept, _ = count_kept(masks_at(rankings, allocation))
            unit = math.prod(next(iter(rankings.values())).unit)
            assert abs(kept - uniform_kept) < unit, "within one unit of the uniform model's size"
            # a layer's share rounds to whole units: within half a unit of the choices' range and grid
            half = {name: 0.5 / ranking.n_units + 1e-9 for name, ranking in rankings.items()}
            assert all(
                min(CHOICES) - half[name] <= share <= max(CHOICES) + half[name] for name, share in allocation.items()
            )
            on_grid += sum(
                any(abs(share - choice) <= half[name] for choice in CHOICES) for name, share in allocation.items()
            )
        assert on_grid >= 25 * (len(rankings) - 2), "most layers stay on the choices' grid"
    with pytest.raises(ValueError, match="outside the per-layer choices"):
        allocation_at_size(rankings, 0.2, CHOICES, generator)


def test_layerwise_passes_start_after_warmup_at_the_configured_rate() -> None:
    rankings = _rankings()
    never, always = LayerwiseSampling(0.0, CHOICES, 0), LayerwiseSampling(1.0, CHOICES, 5)
    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    assert never.draw(10, 0.7, rankings, generator) is None
    assert torch.equal(generator.get_state(), state), "rate 0 draws nothing: the default stream is unchanged"
    assert always.draw(4, 0.7, rankings, generator) is None
    assert always.draw(5, 0.7, rankings, generator) is not None
    half = LayerwiseSampling(0.5, CHOICES, 0)
    drawn = [half.draw(0, 0.7, rankings, generator) is not None for _ in range(400)]
    assert sum(drawn) / len(drawn) == pytest.approx(0.5, abs=0.08)


def test_levels_outside_the_per_layer_choices_are_named() -> None:
    config = layered_config(
        {"omni": {"layerwise_rate": 0.5}, "search": {"levels": [0.6, 0.7, 0.8, 0.9], "budgets": [0.7, 0.9]}},
    )
    with pytest.raises(ConfigError, match=r"omni\.layerwise_rate.*\[0\.5\]"):
        check_study(config)


def test_supernet_job_trains_per_layer_vectors_and_logs_them(
    prepared: PreparedData, dense_model: Path, tmp_path: Path
) -> None:
    config = copy.deepcopy(prepared.config)
    config["omni"].update(layerwise_rate=1.0, warmup_fraction=0.0, level_weights="loss")
    supernet, masks = job_params.supernet(config), job_params.masks(config)
    assert supernet["layer_levels"] == config["search"]["levels"]
    assert "layer_levels" not in job_params.supernet(prepared.config), "no per-layer passes, no dependency"
    job = paths(prepared, tmp_path, init=dense_model)
    setup = training_setup(config, "omni")
    run_training_job(setup, supernet_job("omni", supernet, masks), job, 1)
    log = pd.read_csv(job.log_out)
    assert (log[f"{PASS_LAYERWISE}1"] == 1.0).all() and log[f"{PASS_LEVEL}1"].isin(config["sparsity"]["levels"]).all()


# ---------------------------------------------------------------- weights no sub-network used


@pytest.mark.parametrize("frozen", [True, False])
def test_weights_no_subnetwork_kept_leave_the_step_untouched_only_when_frozen(frozen: bool) -> None:
    model, model_config, config = small_setup()
    batch = fixed_batch(model_config)
    sampler = LevelSampler(
        strategy="uniform",
        levels=[0.9],
        level_space="discrete",
        continuous_range=(0.5, 0.9),
        random_levels=0,
        warmup_steps=0,
        update_every=1,
    )
    strategy = SupernetGradients(model, mask_settings(config), sampler, 1, 0, freeze_unused=frozen)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.01, weight_decay=0.5)
    for step in range(3):  # later steps carry momentum from earlier ones
        strategy.prepare(step)
        optimizer.zero_grad()
        before = {name: original_weight(model, name).detach().clone() for name in strategy.names}
        strategy.accumulate(step, PlainLoss(lambda: logits_of(model, batch).square().mean()))
        optimizer.step()
        strategy.after_step()
        kept = masks_at(strategy.rankings, 0.9)
        for name in strategy.names:
            after = original_weight(model, name).detach()
            assert not torch.equal(after[kept[name]], before[name][kept[name]]), "used weights train"
            assert torch.equal(after[~kept[name]], before[name][~kept[name]]) == frozen, name
