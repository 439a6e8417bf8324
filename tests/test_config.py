"""Configuration errors stop a run with a message that names the offending key."""
from __future__ import annotations

import pytest

from omni.config import ConfigError, load_config, model_preset
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

    for layered in sorted((REPO / "configs").glob("*.yaml")):
        load_config(REPO / "config.yaml", yaml.safe_load(layered.read_text()))


def test_unknown_model_preset_is_named() -> None:
    config = load_config(REPO / "config.yaml", {"model": {"preset": "huge"}})
    with pytest.raises(ConfigError, match="model.preset"):
        model_preset(config)


def test_segment_not_a_multiple_of_the_stride_is_named() -> None:
    config = load_config(REPO / "config.yaml", {"model": {"presets": {"tiny": {"time_reduction_stride": 4,
                                                                                 "segment_length": 18}}}})
    with pytest.raises(ConfigError, match=r"model\.presets\.tiny\.segment_length.*time_reduction_stride"):
        model_preset(config)
