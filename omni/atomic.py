"""Atomic outputs: a killed job must never leave a file that looks finished."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from omni.write_errors import explained_write_errors

PLAIN_FILE_MODE = 0o666  # what open() asks for; the kernel takes the umask off
_TMP_TOKEN_BYTES = 8  # 64 random bits: a name clash between concurrent writers is not a practical event
_TEMPORARY_SUFFIX = ".tmp"
TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{" + str(2 * _TMP_TOKEN_BYTES) + "}" + re.escape(_TEMPORARY_SUFFIX) + "$")
"""The names atomic_path's temporaries take: `.<final name>.` + the random token in hex + the suffix."""


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto `final` only if the block succeeds.

    The temporary is created as open() creates a file, so the output's mode honours the umask
    (tempfile.mkstemp's 0600 would survive the rename and hide a shared results folder from the
    lab). A write the filesystem refuses (full, quota, read-only) is told as such (omni.write_errors)."""
    final = Path(final)
    tmp = None
    try:
        with explained_write_errors(final):
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = _created_sibling(final)
            yield tmp
            os.replace(tmp, final)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _created_sibling(final: Path) -> Path:
    tmp = final.with_name(f".{final.name}.{secrets.token_hex(_TMP_TOKEN_BYTES)}{_TEMPORARY_SUFFIX}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PLAIN_FILE_MODE))
    return tmp


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


class ArtefactError(ValueError):
    """An artefact file (a model, a supernet, an export) that torch.load with weights_only refuses or cannot
    read, named: torch's own messages name no file, and for a refused pickle suggest weights_only=False."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path} {reason}")


def load_torch(path: str | os.PathLike | BinaryIO, map_location: Any = "cpu") -> Any:
    """Every artefact is a plain container of tensors and primitives, so weights_only holds. A file that
    fails to load raises ArtefactError naming it (a buffer, e.g. a checkpoint's verified payload, raises
    torch's own error: its caller names the file)."""
    import pickle

    import torch

    if not isinstance(path, (str, os.PathLike)):
        return torch.load(path, map_location=map_location, weights_only=True)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise ArtefactError(
            path,
            "holds objects other than tensors and plain containers, or damaged bytes "
            f"({_refusal(error)}); refused unread: artefacts are loaded as weights only. "
            "Do not load it with weights_only=False unless you know who wrote it; rerun "
            "the job that writes it",
        ) from None
    except EOFError:
        raise ArtefactError(path, "is empty or cut short; rerun the job that writes it") from None
    except RuntimeError as error:
        if "PytorchStreamReader" not in str(error):  # torch's zip reader: a truncated or damaged file
            raise
        raise ArtefactError(
            path,
            f"is not a readable torch file, truncated or damaged ({str(error).split('.')[0]}); "
            "rerun the job that writes it",
        ) from None


def _refusal(error: Exception) -> str:
    """What torch's weights-only unpickler refused (its last line of substance), without its advice."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = [
        line
        for line in lines
        if not line.startswith(("Weights only load failed", "Please file an issue", "Check the documentation"))
    ]
    return detail[-1].rstrip(".") if detail else type(error).__name__


def write_dataframe(path: str | os.PathLike, frame: Any, **to_csv_kwargs: Any) -> None:
    """Write a pandas frame as CSV/TSV atomically (sep from the suffix)."""
    sep = "\t" if str(path).endswith(".tsv") else ","
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep=sep, index=False, **to_csv_kwargs)
