"""Training checkpoints: a folder outside Snakemake's declared outputs, newest intact one resumes.

Snakemake deletes declared outputs before re-running a job, so checkpoints must live elsewhere for a
killed job to resume. A file is HEADER, the SHA-256 digest of the payload, and the payload: torch.save
of a plain state dict, loaded with weights_only. torch.load alone accepts flipped bits in tensor data
(it checks no checksum) and fails on truncation with errors that name no file; the digest turns any
change after the write into one named rejection, and the folder resumes the next older file instead.
SHA-256 rather than a CRC: hashlib has it, it costs milliseconds beside the save itself, and no
accidental damage passes it. It is no defence against a forged file; weights_only is.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omni.atomic import atomic_path, load_torch

KEEP_LAST = 2
HEADER = b"omni checkpoint, sha256 of the rest follows\n"
_DIGEST_BYTES = hashlib.sha256().digest_size
_ZIP_START = b"PK\x03\x04"  # what torch.save's files begin with: a checkpoint from before the header
_NAME = re.compile(r"^step(\d{8})\.pt$")
REJECTED = ".rejected"  # suffix of a checkpoint moved aside (kept for inspection, never resumed)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be resumed: damaged, of an older format, or not a plain state dict."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"checkpoint {path} {reason}")


def write_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically, so the digest and the payload it covers land together or not at all."""
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getbuffer()
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(HEADER)
        handle.write(hashlib.sha256(payload).digest())
        handle.write(payload)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The state dict in `path`, only if its bytes are the ones written; else CheckpointError naming it."""
    path = Path(path)
    data = path.read_bytes()
    if not data:
        raise CheckpointError(path, "is empty (0 bytes)")
    if data.startswith(_ZIP_START):
        raise CheckpointError(
            path, "has no checksum (written before checkpoints carried one), so its integrity cannot be checked"
        )
    if not data.startswith(HEADER) or len(data) < len(HEADER) + _DIGEST_BYTES:
        raise CheckpointError(path, "is not a checkpoint file (no checksum header: overwritten or cut short)")
    digest, payload = data[len(HEADER) : len(HEADER) + _DIGEST_BYTES], memoryview(data)[len(HEADER) + _DIGEST_BYTES :]
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(
            path, "fails its SHA-256 checksum (its bytes changed after it was written: truncated or damaged)"
        )
    try:
        return load_torch(io.BytesIO(payload))
    except pickle.UnpicklingError:
        raise CheckpointError(
            path,
            "holds objects other than tensors and plain containers; refused unread "
            "(checkpoints are loaded as weights only)",
        ) from None


class CheckpointFolder:
    def __init__(self, folder: str | Path, fingerprint: str) -> None:
        """`fingerprint` identifies the job's configuration; a checkpoint of another
        configuration is never resumed (it would silently mix two experiments)."""
        self.folder = Path(folder)
        self.fingerprint = fingerprint

    def _files(self) -> list[tuple[int, Path]]:
        if not self.folder.exists():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _NAME.match(p.name))]
        return sorted(found)

    def _path(self, step: int) -> Path:
        return self.folder / f"step{step:08d}.pt"

    def resume(self, say: Callable[[str], None]) -> dict[str, Any] | None:
        """The newest intact checkpoint of this configuration, or None: then the job starts over.
        Each newer file that fails to load or verify is named through `say` and moved aside (renamed
        with REJECTED, so it is neither lost nor tried again), and the next older one is tried."""
        files = self._files()
        for _, path in reversed(files):
            try:
                state = read_checkpoint(path)
            except CheckpointError as error:
                say(f"{error}; moved aside to {self._move_aside(path).name}")
                continue
            if state.get("fingerprint") == self.fingerprint:
                return state
        if files:
            say(f"no intact checkpoint of this configuration in {self.folder}: training starts over from step 0")
        return None

    def load(self, step: int) -> dict[str, Any]:
        """The checkpoint of `step`, which another process chose and verified (data-parallel ranks)."""
        return read_checkpoint(self._path(step))

    def _move_aside(self, path: Path) -> Path:
        """Beside any earlier rejection of the same step (a later one never replaces it)."""
        target, copy = path.with_name(path.name + REJECTED), 1
        while target.exists():
            target, copy = path.with_name(f"{path.name}{REJECTED}{copy}"), copy + 1
        return path.rename(target)

    def save(self, step: int, state: dict[str, Any]) -> Path:
        path = self._path(step)
        write_checkpoint(path, {**state, "fingerprint": self.fingerprint, "step": step})
        for _, old in self._files()[:-KEEP_LAST]:
            old.unlink()
        return path
