"""Configuration errors stop a run with a message that names the offending key."""
from __future__ import annotations

import pytest

from omni import job_params
from omni.config import ConfigError, load_config
from omni.sparsity.supernet import planned_sampler
from omni.study import check_study
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


SHIPPED = [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_every_shipped_config_is_valid_and_gives_both_arms_equal_compute(path) -> None:
    import yaml

    config = load_config(REPO / "config.yaml", yaml.safe_load(path.read_text()))
    check_study(config)
    assert config["omni"]["budget"] is None and not config["omni"]["unequal_budget"], "shipped configs use the rule"
    steps, sampler = planned_sampler(job_params.supernet(config))
    individual_passes = config["individual"]["steps"]  # one sub-network pass per step
    assert steps * sampler.passes_per_step() == individual_passes


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


def test_budget_other_than_the_individual_job_is_named_unless_opted_out() -> None:
    config = load_config(REPO / "config.yaml", {"omni": {"budget": 400}})
    with pytest.raises(ConfigError, match=r"omni\.budget.*individual\.steps.*omni\.unequal_budget"):
        check_study(config)
    check_study(load_config(REPO / "config.yaml", {"omni": {"budget": 400, "unequal_budget": True}}))


def test_pruning_ramp_shorter_than_one_mask_update_is_named() -> None:
    config = load_config(REPO / "config.yaml", {"individual": {"steps": 40, "mask_update_every": 30}})
    with pytest.raises(ConfigError, match=r"individual\.prune_fraction.*individual\.mask_update_every"):
        check_study(config)


def test_supernet_warmup_shorter_than_one_mask_update_is_named() -> None:
    # the LibriSpeech mistake this check exists for: 800 passes against masks updated every 500 steps
    config = load_config(REPO / "config.yaml", {"omni": {"mask_update_every": 500, "budget": 800,
                                                          "unequal_budget": True}})
    with pytest.raises(ConfigError, match=r"omni\.warmup_fraction.*omni\.mask_update_every"):
        check_study(config)


def test_inplace_distillation_with_one_subnetwork_per_step_is_named() -> None:
    config = load_config(REPO / "config.yaml", {"distill": {"omni": "inplace"}, "omni": {"sampling": "uniform"}})
    with pytest.raises(ConfigError, match=r"distill\.omni.*omni\.sampling"):
        check_study(config)
    check_study(load_config(REPO / "config.yaml", {"distill": {"omni": "inplace"}, "omni": {"sampling": "sandwich"}}))
