"""The corpus stage: whichever corpus is configured ends as one info record for the manifests.

The record names a LibriSpeech-layout root and, per pipeline split, the subset folders under
it, so the manifest stage reads the synthetic corpus and a real LibriSpeech tree the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from omni.data.synth_corpus import SPLITS, build_synth_corpus

SYNTH_TREE = Path("corpus") / "synth"
"""Where the synthetic tree goes, under `results_dir`."""


class CorpusError(ValueError):
    """The configured corpus is not where the configuration says."""


def synth_root(config: dict[str, Any]) -> Path:
    return (Path(config["results_dir"]) / SYNTH_TREE).resolve()


def describe_librispeech(config: dict[str, Any]) -> dict[str, Any]:
    """Index a local LibriSpeech tree in place (no copy), failing early on a missing folder."""
    settings = config["librispeech"]
    root = Path(settings["root"]).expanduser().resolve()
    if not root.is_dir():
        raise CorpusError(f"config key 'librispeech.root': directory {root} does not exist")
    for split, subsets in settings["subsets"].items():
        for subset in subsets:
            if not (root / subset).is_dir():
                raise CorpusError(
                    f"config key 'librispeech.subsets.{split}': subset folder {root / subset} does not exist"
                )
    return {"corpus": "librispeech", "root": str(root),
            "subsets": {split: list(settings["subsets"][split]) for split in SPLITS}}


def prepare_corpus(config: dict[str, Any], workers: int) -> dict[str, Any]:
    """Build (synth) or check (librispeech) the corpus and return its info record."""
    if config["corpus"] == "librispeech":
        return describe_librispeech(config)
    root = synth_root(config)
    stats = build_synth_corpus(config, root, workers)
    return {"corpus": "synth", "root": str(root), "subsets": {split: [split] for split in SPLITS}, **stats}
