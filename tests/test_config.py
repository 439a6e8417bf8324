"""Configuration errors stop a run with a message that names the offending key."""
from __future__ import annotations

import pytest

from omni.config import ConfigError, check_study, load_config
from tests.conftest import REPO


@pytest.mark.parametrize("overrides, key", [
    ({"train": {"bogus": 1}}, "'train'"),                       # unknown key
    ({"train": {"lr": "fast"}}, "'train.lr'"),                  # wrong type
    ({"train": {"lr": -1}}, "'train.lr'"),                      # out of range
    ({"sparsity": {"levels": [0.5, 1.5]}}, "'sparsity.levels.1'"),
    ({"corpus": "timit"}, "'corpus'"),
    ({"evaluate": {"decodes": ["greedy-sideways"]}}, "'evaluate.decodes.0'"),
])
def test_schema_error_names_the_key(overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config(REPO / "config.yaml", overrides)


def test_every_shipped_config_is_valid() -> None:
    import yaml

    for layered in [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))]:
        check_study(load_config(REPO / "config.yaml", yaml.safe_load(layered.read_text())))


# One test per check across keys (omni.config.check_study, run once when the workflow is parsed).


def test_unknown_model_preset_is_named() -> None:
    config = load_config(REPO / "config.yaml", {"model": {"preset": "huge"}})
    with pytest.raises(ConfigError, match="model.preset"):
        check_study(config)


@pytest.mark.parametrize("key", ["segment_length", "right_context_length"])
def test_segment_or_lookahead_not_a_multiple_of_the_stride_is_named(key: str) -> None:
    config = load_config(REPO / "config.yaml", {"model": {"presets": {"tiny": {"time_reduction_stride": 4,
                                                                                 key: 18}}}})
    with pytest.raises(ConfigError, match=rf"model\.presets\.tiny\.{key}.*time_reduction_stride"):
        check_study(config)


def test_table_decode_not_evaluated_is_named() -> None:
    config = load_config(REPO / "config.yaml", {"report": {"table_decode": "beam-full"}})
    with pytest.raises(ConfigError, match=r"report\.table_decode.*beam-full"):
        check_study(config)


@pytest.mark.parametrize(("overrides", "key"), [
    ({"sparsity": {"levels": [0.5, 0.85]}}, r"sparsity\.levels.*0\.85"),          # budgets default to the levels
    ({"search": {"budgets": [0.5, 0.75]}}, r"search\.budgets.*0\.75"),
])
def test_search_budget_that_is_not_a_search_level_is_named(overrides: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        check_study(load_config(REPO / "config.yaml", overrides))
