"""Supernet training strategies: level sampling weights (fixed or by loss)."""
from __future__ import annotations

import pytest
import torch

from omni.config import ConfigError, load_config
from omni.sparsity.supernet import LevelSampler, LevelWeights
from omni.study import check_study
from tests.conftest import REPO

LEVELS = [0.5, 0.7, 0.8, 0.9]


def _uniform_sampler() -> LevelSampler:
    return LevelSampler(strategy="uniform", levels=LEVELS, level_space="discrete", continuous_range=(0.5, 0.9),
                        random_levels=0, warmup_steps=0, update_every=1)


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


def test_loss_weights_draw_uniformly_until_every_level_trained_then_favour_the_hardest() -> None:
    weights = LevelWeights("loss", LEVELS)
    for level, loss in [(0.5, 1.0), (0.7, 1.0), (0.8, 1.0)]:
        weights.observe(level, loss)
    assert weights.current() is None
    weights.observe(0.9, 7.0)
    weights.observe(0.33, 99.0)  # a capped warm-up level is no configured level: not counted
    assert _draws(weights)[0.9] == pytest.approx(0.7, abs=0.03)
    weights.observe(0.9, 0.0)   # an exponential average, not the last loss
    assert float(weights.current()[-1]) == pytest.approx(0.9 * 7.0)
    restored = LevelWeights("loss", LEVELS)
    restored.load_state_dict(weights.state_dict())
    assert torch.equal(restored.current(), weights.current())


@pytest.mark.parametrize(("omni", "named"), [
    ({"level_weights": [1.0, 2.0]}, r"omni\.level_weights.*2 weights for 4 levels"),
    ({"level_weights": "loss", "level_space": "continuous"}, r"omni\.level_weights.*continuous"),
])
def test_level_weights_that_do_not_fit_the_levels_are_named(omni: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        check_study(load_config(REPO / "config.yaml", {"omni": omni}))
