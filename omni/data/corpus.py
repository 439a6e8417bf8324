"""The corpus stage: whichever corpus is configured ends as one info record for the manifests.

The record names a LibriSpeech-layout root and, per pipeline split, the subset folders under
it, so the manifest stage reads the synthetic corpus and a real LibriSpeech tree the same way; a
user's own corpus (`corpus: manifests`) is recorded as its listing per split, absolute, under the
folder that holds them all (omni.data.sources).
It is the one place the root is written down (manifests name the record and hold audio paths
relative to its root), so it says where the audio is in a way that survives a move: the synthetic
corpus is an output of the study, inside the results folder, and its root is recorded relative to
the record; a LibriSpeech tree is an input that stays where config `librispeech.root` says, and is
recorded absolute.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omni.atomic import write_json
from omni.data.sources import source_files
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


def describe_manifests(listings: Mapping[str, Mapping[str, str]] | None) -> dict[str, Any]:
    """Check each split's listing exists (config `manifests.<split>`) and record it with absolute paths;
    the record's root is the folder that holds every listing."""
    if listings is None:
        raise CorpusError("config key 'manifests' is null, but config corpus is 'manifests': give each split's listing")
    sources = {}
    for split in SPLITS:
        source = dict(listings[split])
        for key in sorted(set(source) - {"format"}):
            path = source[key] = str(Path(source[key]).expanduser().resolve())
            found = Path(path).is_dir() if key == "dir" else Path(path).is_file()
            if not found:
                kind = "directory" if key == "dir" else "file"
                raise CorpusError(f"config key 'manifests.{split}.{key}': {kind} {path} does not exist")
        sources[split] = source
    folders = [str(path.parent) for source in sources.values() for path in source_files(source)]
    return {"corpus": "manifests", "root": os.path.commonpath(folders), "sources": sources}


def prepare_corpus(corpus: Mapping[str, Any], synth_tree: Path, workers: int) -> dict[str, Any]:
    """Build (synth, into `synth_tree`) or check (librispeech) the corpus and return its info record.

    `corpus` is the rule's section (omni.job_params.corpus)."""
    if corpus["kind"] == "librispeech":
        return describe_librispeech(corpus["root"], corpus["subsets"])
    if corpus["kind"] == "manifests":
        return describe_manifests(corpus["listings"])
    root = Path(os.path.abspath(synth_tree))
    stats = build_synth_corpus(corpus, root, workers)
    return {"corpus": "synth", "root": str(root), "subsets": {split: [split] for split in SPLITS}, **stats}


def write_corpus_record(path: str | os.PathLike, info: Mapping[str, Any]) -> None:
    """`info` (prepare_corpus's) at `path`, the synthetic corpus's root relative to it."""
    root = relative_to_file(info["root"], path) if info["corpus"] == "synth" else info["root"]
    write_json(path, {**info, "root": root})


def read_corpus_record(path: str | os.PathLike) -> dict[str, Any]:
    """The record at `path`, its root absolute (found from the record's own place when recorded relative)."""
    try:
        info = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise CorpusError(
            f"corpus record {path} cannot be read ({error}): a results folder's manifests find"
            " their audio through it; copy the results folder whole, or rebuild it (rule build_corpus)"
        ) from error
    return {**info, "root": str(resolve_from_file(info["root"], path))}


def relative_to_file(target: str | os.PathLike, file: str | os.PathLike) -> str:
    """`target` as a path relative to the folder of `file` (lexically: what a moved folder keeps)."""
    return os.path.relpath(os.path.abspath(target), os.path.dirname(os.path.abspath(file)))


def resolve_from_file(recorded: str, file: str | os.PathLike) -> Path:
    """A path recorded in `file`: absolute as it is, or relative to the folder of `file`."""
    return Path(os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(file)), recorded)))
