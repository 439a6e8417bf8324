"""Configuration errors stop a run with a message that names the offending key (the fault probes of bad
configurations, with tests/test_pipeline.py's, which run snakemake itself)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from omni import job_params
from omni.config import ConfigError, load_config
from omni.config_checks import check_study
from omni.jobs.specs import supernet_spec
from omni.sparsity.supernet import LevelSampler
from tests.conftest import REPO, layered_config
from tests.faults import FaultRecorder

REFUSED = "refused when the configuration is read, before any job"


@pytest.mark.fault("bad configs")
@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"train": {"bogus": 1}}, "'train'"),  # unknown key
        ({"train": {"lr": "fast"}}, "'train.lr'"),  # wrong type
        ({"train": {"lr": -1}}, "'train.lr'"),  # out of range
        ({"sparsity": {"levels": [0.5, 1.5]}}, "'sparsity.levels.1'"),
        ({"corpus": "timit"}, "'corpus'"),
        ({"evaluate": {"decodes": ["greedy-sideways"]}}, "'evaluate.decodes.0'"),
    ],
)
def test_schema_error_names_the_key(overrides: dict, key: str, fault: FaultRecorder) -> None:
    with pytest.raises(ConfigError, match=key) as caught:
        layered_config(overrides)
    fault.named(str(caught.value), key, *(["'bogus'"] if "bogus" in overrides.get("train", {}) else []))
    fault.survived(REFUSED)


SHIPPED = [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))]
LAYERED_ON = {"librispeech-sample.yaml": "librispeech.yaml"}  # written as a layer over another config (its header)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_every_shipped_config_is_valid_and_gives_both_arms_equal_compute(path) -> None:
    base = [REPO / "configs" / LAYERED_ON[path.name]] if path.name in LAYERED_ON else []
    config = layered_config(*(yaml.safe_load(layer.read_text()) for layer in (*base, path)))
    check_study(config)
    budget_arms = set(job_params.budget_multiples(config, "omni").values()) - {"omni"}  # m x the compute on purpose
    for arm in (arm for arm in job_params.pruning_arms(config, "omni") if arm not in budget_arms):
        arm_config = job_params.arm_config(config, arm)
        assert arm_config["omni"]["budget"] is None and not arm_config["omni"]["unequal_budget"], arm
        section = job_params.supernet(config, arm)
        spec = supernet_spec(section)
        steps, sampler = spec.steps, LevelSampler.for_steps(spec, spec.steps)
        teacher = section.get("distill", {}).get("forward_cost", 0.0)  # a dense teacher's forward per step
        # one individual job with the same teacher: individual.steps passes (+ a teacher forward each)
        individual_cost = config["individual"]["steps"] * (1 + teacher)
        assert steps * (sampler.passes_per_step() + teacher) == pytest.approx(individual_cost, rel=0.01), arm


def test_a_dense_teacher_counts_in_the_budget_at_its_forward_cost() -> None:
    teacher = {"distill": {"omni": "dense", "teacher_forward_cost": 0.25}}
    uniform = layered_config(teacher)
    steps = supernet_spec(job_params.supernet(uniform)).steps
    assert steps == uniform["individual"]["steps"], "uniform + teacher: as many steps as the individual job + teacher"
    sandwich = layered_config({**teacher, "omni": {"sampling": "sandwich"}})
    steps = supernet_spec(job_params.supernet(sandwich)).steps
    assert steps == round(800 * 1.25 / 2.25)  # two passes and one teacher forward per step
    inplace = layered_config({"distill": {"omni": "inplace"}, "omni": {"sampling": "sandwich"}})
    steps = supernet_spec(job_params.supernet(inplace)).steps
    assert steps == 400, "an in-place teacher is one of the step's passes: no extra cost"


def test_variants_override_their_own_arm_and_pair_by_teacher() -> None:
    labels_only = {"distill": {"individual": "none", "omni": "none"}}  # the study's own arms, as in strategies.yaml
    config = layered_config(
        {
            **labels_only,
            "variants": {
                "individual-kd": {"distill": {"individual": "dense"}},
                "omni-kd": {"distill": {"omni": "dense"}},
                "omni-inplace": {"distill": {"omni": "inplace"}, "omni": {"sampling": "sandwich"}},
            },
        },
    )
    check_study(config)
    assert job_params.pruning_arms(config, "omni") == ["omni", "omni-kd", "omni-inplace"]
    assert job_params.supernet(config, "omni") == job_params.supernet(layered_config(labels_only)), (
        "a variant leaves the study's own arm alone"
    )
    assert job_params.supernet(config, "omni-inplace")["sampling"] == "sandwich"
    assert job_params.individual(config, "individual-kd")["distill"]["teacher"] == "dense"
    assert "distill" not in job_params.individual(config, "individual")
    assert job_params.paired_individual(config) == {
        "omni": "individual",
        "omni-kd": "individual-kd",
        "omni-inplace": "individual",
    }


@pytest.mark.fault("bad configs")
@pytest.mark.parametrize(
    ("overrides", "named", "keys"),
    [
        (
            {"variants": {"individual-x": {"omni": {"sampling": "sandwich"}}}},
            r"variants\.individual-x\.omni",
            ["variants.individual-x.omni"],
        ),
        ({"search": {"arms": ["omni-missing"]}}, r"search\.arms.*omni-missing", ["search.arms", "omni-missing"]),
        (
            {"variants": {"omni-x": {"distill": {"omni": "inplace"}}}},
            r"distill\.omni.*arm omni-x",
            ["distill.omni", "omni-x"],
        ),
    ],
)
def test_a_variant_that_cannot_run_is_named(overrides: dict, named: str, keys: list[str], fault: FaultRecorder) -> None:
    with pytest.raises(ConfigError, match=named) as caught:
        check_study(layered_config(overrides))
    fault.named(str(caught.value), *keys)
    fault.survived(REFUSED)


@pytest.mark.fault("bad configs")
@pytest.mark.parametrize("name", ["omni", "dense-x", "omni-x-searched", "omni_x"])
def test_a_variant_name_must_say_its_kind(name: str, fault: FaultRecorder) -> None:
    with pytest.raises(ConfigError, match="variants") as caught:
        layered_config({"variants": {name: {}}})
    fault.named(str(caught.value), "variants", name)
    fault.survived(REFUSED)


# One test per check across keys (omni.config.check_study, run once when the workflow is parsed).


@pytest.mark.fault("bad configs")
def test_unknown_model_preset_is_named(fault: FaultRecorder) -> None:
    config = layered_config({"model": {"preset": "huge"}})
    with pytest.raises(ConfigError, match="model.preset") as caught:
        check_study(config)
    fault.named(str(caught.value), "model.preset")
    fault.survived(REFUSED)


@pytest.mark.fault("bad configs")
@pytest.mark.parametrize("key", ["segment_length", "right_context_length"])
def test_segment_or_lookahead_not_a_multiple_of_the_stride_is_named(key: str, fault: FaultRecorder) -> None:
    config = layered_config({"model": {"presets": {"tiny": {"time_reduction_stride": 4, key: 18}}}})
    with pytest.raises(ConfigError, match=rf"model\.presets\.tiny\.{key}.*time_reduction_stride") as caught:
        check_study(config)
    fault.named(str(caught.value), f"model.presets.tiny.{key}")
    fault.survived(REFUSED)


@pytest.mark.fault("bad configs")
def test_table_decode_not_evaluated_is_named(fault: FaultRecorder) -> None:
    config = layered_config({"report": {"table_decode": "beam-full"}})
    with pytest.raises(ConfigError, match=r"report\.table_decode.*beam-full") as caught:
        check_study(config)
    fault.named(str(caught.value), "report.table_decode")
    fault.survived(REFUSED)


@pytest.mark.fault("bad configs")
@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"sparsity": {"levels": [0.5, 0.85]}}, r"sparsity\.levels.*0\.85"),  # budgets default to the levels
        ({"search": {"budgets": [0.5, 0.75]}}, r"search\.budgets.*0\.75"),
    ],
)
def test_search_budget_that_is_not_a_search_level_is_named(overrides: dict, key: str, fault: FaultRecorder) -> None:
    with pytest.raises(ConfigError, match=key) as caught:
        check_study(layered_config(overrides))
    fault.named(str(caught.value), key.split(".*")[0].replace("\\", ""))
    fault.survived(REFUSED)


@pytest.mark.fault("bad configs")
def test_budget_other_than_the_individual_job_is_named_unless_opted_out(fault: FaultRecorder) -> None:
    config = layered_config({"omni": {"budget": 400}})
    with pytest.raises(ConfigError, match=r"omni\.budget.*individual\.steps.*omni\.unequal_budget") as caught:
        check_study(config)
    fault.named(str(caught.value), "omni.budget", "omni.unequal_budget")
    fault.survived(REFUSED + "; accepted when opted out")
    check_study(layered_config({"omni": {"budget": 400, "unequal_budget": True}}))


@pytest.mark.fault("bad configs")
def test_pruning_ramp_shorter_than_one_mask_update_is_named(fault: FaultRecorder) -> None:
    config = layered_config({"individual": {"steps": 40, "mask_update_every": 30}, "train": {"warmup_steps": 10}})
    with pytest.raises(ConfigError, match=r"individual\.prune_fraction.*individual\.mask_update_every") as caught:
        check_study(config)
    fault.named(str(caught.value), "individual.prune_fraction", "individual.mask_update_every")
    fault.survived(REFUSED)


@pytest.mark.fault("bad configs")
def test_supernet_warmup_shorter_than_one_mask_update_is_named(fault: FaultRecorder) -> None:
    # the LibriSpeech mistake this check exists for: 800 passes against masks updated every 500 steps
    config = layered_config({"omni": {"mask_update_every": 500, "budget": 800, "unequal_budget": True}})
    with pytest.raises(ConfigError, match=r"omni\.warmup_fraction.*omni\.mask_update_every") as caught:
        check_study(config)
    fault.named(str(caught.value), "omni.warmup_fraction", "omni.mask_update_every")
    fault.survived(REFUSED)


@pytest.mark.fault("bad configs")
def test_inplace_distillation_with_one_subnetwork_per_step_is_named(fault: FaultRecorder) -> None:
    config = layered_config({"distill": {"omni": "inplace"}, "omni": {"sampling": "uniform"}})
    with pytest.raises(ConfigError, match=r"distill\.omni.*omni\.sampling") as caught:
        check_study(config)
    fault.named(str(caught.value), "distill.omni", "omni.sampling")
    fault.survived(REFUSED + "; accepted with two passes per step")
    check_study(layered_config({"distill": {"omni": "inplace"}, "omni": {"sampling": "sandwich"}}))


def test_a_variant_in_another_pruning_unit_masks_and_pairs_in_its_unit() -> None:
    blocks = {"sparsity": {"granularity": "block", "block_shape": [16, 1]}}
    config = layered_config({"variants": {"individual-b16x1": blocks, "omni-b16x1": blocks}})
    check_study(config)
    for arm in ("individual-b16x1", "omni-b16x1", "omni-b16x1-searched"):
        assert job_params.masks(config, arm)["granularity"] == "block" and job_params.masks(config, arm)[
            "block_shape"
        ] == [16, 1]
    for arm in ("individual", "omni", "dense", "control", "omni-searched"):
        assert job_params.masks(config, arm) == job_params.masks(load_config(REPO / "config.yaml")), arm
    assert job_params.paired_individual(config) == {"omni": "individual", "omni-b16x1": "individual-b16x1"}
    with pytest.raises(ConfigError, match="variants"):
        layered_config({"variants": {"omni-x": {"sparsity": {"levels": [0.5]}}}})


@pytest.mark.fault("bad configs")
def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path, fault: FaultRecorder) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("train:\n  lr: [0.1\n  warmup_steps: 2\n")
    with pytest.raises(ConfigError, match=rf'{broken} is not valid YAML(.|\n)*"{broken}", line 2, column 7') as caught:
        load_config(broken)
    fault.named(str(caught.value), str(broken), "line 2, column 7")
    fault.survived(REFUSED)


@pytest.mark.fault("bad configs")
def test_a_results_folder_in_the_repository_is_the_one_git_ignores(fault: FaultRecorder) -> None:
    """Inside the checkout only results/ may hold a study's outputs, and git ignores it: nothing a study
    writes there is committed by `git add -A`."""
    inside = REPO / "results" / "any-study"
    check_study(layered_config({"results_dir": str(inside)}))
    assert subprocess.run(["git", "check-ignore", "-q", str(inside)], cwd=REPO).returncode == 0
    with pytest.raises(ConfigError, match="config key 'results_dir'.*inside the repository") as caught:
        check_study(layered_config({"results_dir": str(REPO / "any-study")}))
    fault.named(str(caught.value), "config key 'results_dir'")
    fault.survived(REFUSED + "; results/ (which git ignores) accepted")
