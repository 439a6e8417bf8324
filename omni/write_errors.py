"""Writes the filesystem refused (full, over quota, read-only), told as such with the path and free space.

A full disk rarely says so: torch.save raises a RuntimeError ("basic_ios::clear: iostream error", "enforce
fail at inline_container.cc ... unexpected pos"), libsndfile "System error.", neither with a path or an
errno. An OSError carrying an errno is decided by it. For an error without one the filesystem is asked
again, with errno this time: a small probe file is written and synced beside the path. If the probe is
refused for space, quota or a read-only mount, so was the write; if it is taken, the original error was
something else and is re-raised unchanged. The probe runs before the caller removes its partial output
(every caller does), while the space is still taken. A race is possible (another process frees space
between the failure and the probe): then the original error surfaces as it always did.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PROBE_BYTES = 64 * 1024  # more than a write refused for space leaves free (less than a block, as a rule)
_REFUSALS = {
    errno.ENOSPC: (
        "no space left on the device",
        "free space there (or point config key results_dir at a larger filesystem) and run again",
    ),
    errno.EDQUOT: (
        "your disk quota on that filesystem is used up",
        "delete some of your files there or ask for a larger quota, and run again",
    ),
    errno.EROFS: ("the filesystem is read-only", "point config key results_dir at a writable filesystem and run again"),
}
_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")
_UNIT_STEP = 1000.0


class DiskWriteError(OSError):
    """The filesystem refused a write for lack of space or quota, or being read-only; the message says which."""


@contextlib.contextmanager
def explained_write_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn a refused write inside the block into one DiskWriteError naming `path` and its free space."""
    try:
        yield
    except DiskWriteError:
        raise  # already explained (a nested write, or one from a worker process)
    except (OSError, RuntimeError) as error:
        folder = _existing_folder(Path(path))
        refusal = _refusal(error, folder)
        if refusal is None:
            raise
        what, todo = _REFUSALS[refusal]
        usage, counts = shutil.disk_usage(folder), os.statvfs(folder)
        inodes = f", {counts.f_favail} inodes" if counts.f_files else ""  # btrfs and NFS count none
        raise DiskWriteError(
            f"cannot write {path}: {what} ({_size(usage.free)} of {_size(usage.total)}{inodes} free"
            f" on the filesystem holding {folder}); {todo}. [{type(error).__name__}: {error}]"
        ) from error


def _refusal(error: BaseException, folder: Path) -> int | None:
    if isinstance(error, OSError) and error.errno is not None:
        return _refused(error)
    return _probe(folder)


def _refused(error: OSError) -> int | None:
    return error.errno if error.errno in _REFUSALS else None


def _probe(folder: Path) -> int | None:
    """The errno with which the filesystem refuses a small synced write in `folder` now; None if it takes it."""
    try:
        fd, name = tempfile.mkstemp(prefix=".write-probe.", dir=folder)
    except OSError as error:
        return _refused(error)
    try:
        with os.fdopen(fd, "wb") as handle:  # a buffered write loops over short writes until refused
            handle.write(bytes(PROBE_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        return _refused(error)
    finally:
        os.unlink(name)
    return None


def _existing_folder(path: Path) -> Path:
    folder = path.absolute()
    while not folder.is_dir():
        folder = folder.parent
    return folder


def _size(count: float) -> str:
    for unit in _UNITS[:-1]:
        if count < _UNIT_STEP:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= _UNIT_STEP
    return f"{count:.1f} {_UNITS[-1]}"
