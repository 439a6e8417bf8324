"""Atomic outputs: a killed job must never leave a file that looks finished."""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator

_TEMPORARY_SUFFIX = ".tmp"
TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}" + re.escape(_TEMPORARY_SUFFIX) + "$")
"""The names atomic_path's temporaries take: mkstemp's `.<final name>.` + 8 random characters + suffix."""


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=_TEMPORARY_SUFFIX, dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def sweep_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries atomic_path left in `folder` (a SIGKILL skips its cleanup) and return them.
    Only for a folder no live process writes to: a temporary is renamed only by the process that made
    it, so one whose process is gone was never a finished file and never will be."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    swept = sorted(path for path in folder.iterdir() if TEMPORARY.match(path.name) and path.is_file())
    for path in swept:
        path.unlink()
    return swept


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    import torch  # lazily: report jobs write tables only and should not pay torch's import

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path: str | os.PathLike | BinaryIO, map_location: Any = "cpu") -> Any:
    """Every artefact is a plain container of tensors and primitives, so weights_only holds."""
    import torch

    return torch.load(path, map_location=map_location, weights_only=True)


def write_dataframe(path: str | os.PathLike, frame: Any, **to_csv_kwargs: Any) -> None:
    """Write a pandas frame as CSV/TSV atomically (sep from the suffix)."""
    sep = "\t" if str(path).endswith(".tsv") else ","
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep=sep, index=False, **to_csv_kwargs)
