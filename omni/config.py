"""Load and check a study configuration outside Snakemake (tests, scripts, notebooks).

The Snakefile validates with `snakemake.utils.validate` against the same schema file, so the
two entry points accept exactly the same configurations.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value is missing, unknown, mistyped or out of range."""


def load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Raise ConfigError naming the offending key path; return the config unchanged."""
    validator = jsonschema.Draft7Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors:
            key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
            lines.append(f"config key '{key}': {error.message}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    return config


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read YAML, deep-merge `overrides` (as `--configfile` layering does), validate."""
    config = yaml.safe_load(Path(path).read_text())
    if overrides:
        config = deep_merge(config, overrides)
    return validate_config(config)


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def model_preset(config: dict[str, Any]) -> dict[str, Any]:
    """The chosen model preset's dimensions; an unknown preset name is a config error."""
    name = config["model"]["preset"]
    presets = config["model"]["presets"]
    if name not in presets:
        raise ConfigError(f"config key 'model.preset': '{name}' is not one of {sorted(presets)}")
    preset = dict(presets[name])
    stride = preset["time_reduction_stride"]
    for key in ("segment_length", "right_context_length"):
        # torchaudio floors these by the stride: a remainder would silently shorten the segment or look-ahead
        if preset[key] % stride:
            raise ConfigError(f"config key 'model.presets.{name}.{key}': {preset[key]} is not a multiple of "
                              f"time_reduction_stride {stride}")
    return preset

