"""The corpus stage: whichever corpus is configured ends as one info record for the manifests.

The record names a LibriSpeech-layout root and, per pipeline split, the subset folders under
it, so the manifest stage reads the synthetic corpus and a real LibriSpeech tree the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from omni.data.synth_corpus import SPLITS, build_synth_corpus


class CorpusError(ValueError):
    """The configured corpus is not where the configuration says."""


def describe_librispeech(root: str | Path, subsets: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Index a local LibriSpeech tree in place (no copy), failing early on a missing folder."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise CorpusError(f"config key 'librispeech.root': directory {root} does not exist")
    for split, names in subsets.items():
        for subset in names:
            if not (root / subset).is_dir():
                raise CorpusError(
                    f"config key 'librispeech.subsets.{split}': subset folder {root / subset} does not exist"
                )
    return {"corpus": "librispeech", "root": str(root), "subsets": {split: list(subsets[split]) for split in SPLITS}}


def prepare_corpus(corpus: Mapping[str, Any], synth_tree: Path, workers: int) -> dict[str, Any]:
    """Build (synth, into `synth_tree`) or check (librispeech) the corpus and return its info record.

    `corpus` is the rule's section (omni.job_params.corpus)."""
    if corpus["kind"] == "librispeech":
        return describe_librispeech(corpus["root"], corpus["subsets"])
    root = Path(synth_tree).resolve()
    stats = build_synth_corpus(corpus, root, workers)
    return {"corpus": "synth", "root": str(root), "subsets": {split: [split] for split in SPLITS}, **stats}
