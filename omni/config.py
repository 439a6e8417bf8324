"""Load and check a study configuration, in the Snakefile and outside Snakemake (tests, scripts, notebooks).

Both entry points read YAML and validate with the functions here, so they accept exactly the same
configurations and name a bad key the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPOSITORY = Path(__file__).resolve().parent.parent  # the checkout: Snakefile, config.yaml, omni/, rules/, ...
SCHEMA_PATH = REPOSITORY / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value is missing, unknown, mistyped or out of range."""


def load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content; a syntax error is a ConfigError naming the file, line and column (Snakemake's
    own reader says only that some config file is not valid JSON or YAML)."""
    with Path(path).open() as stream:  # a stream, not its text: PyYAML's marks then name the file
        try:
            return yaml.safe_load(stream)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path} is not valid YAML: {error}") from None


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Raise ConfigError naming the offending key path; return the config unchanged."""
    validator = jsonschema.Draft7Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors:
            key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
            lines.append(f"config key '{key}': {error.message}{_text_hint(error)}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    return config


def _text_hint(error: jsonschema.ValidationError) -> str:
    """How a number, boolean or null arrives as text where the schema wants one: Snakemake's --config parses a
    value nested in {...} or [...] with YAML's BaseLoader, which reads every scalar as a string."""
    if error.validator not in ("type", "oneOf") or not isinstance(error.instance, str):
        return ""
    try:
        if isinstance(yaml.safe_load(error.instance), str):
            return ""
    except yaml.YAMLError:
        return ""
    return (
        " (a string: Snakemake's --config reads every value nested in {...} or [...] as a string, so a "
        "number, boolean or null there arrives as text; give such values in a --configfile)"
    )


def load_config(path: str | Path) -> dict[str, Any]:
    """Read YAML and validate. Layers merge as `--configfile` does with Snakemake's own
    `snakemake.utils.update_config` (the Snakefile; tests/conftest.layered_config), never a copy of it here."""
    return validate_config(read_yaml(path))


def model_preset(config: Mapping[str, Any]) -> dict[str, Any]:
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
            raise ConfigError(
                f"config key 'model.presets.{name}.{key}': {preset[key]} is not a multiple of "
                f"time_reduction_stride {stride}"
            )
    return preset
