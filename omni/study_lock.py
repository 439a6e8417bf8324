"""One run of a study per results folder at a time: an exclusive lock on `<results_dir>/.study.lock`.

Snakemake's own lock cannot be relied on: 9.27.1 deletes the whole `.snakemake/locks/` folder when any
run in the working directory exits (FilePersistence._delete_locks), other runs' locks included, and a
restart of a running study then writes its folder beside it (docs/decisions.md). `flock` belongs to the
holder's open file, so the kernel releases it when that process exits or is killed: no stale lock to
remove by hand.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import sys
from pathlib import Path
from typing import TextIO

LOCK_FILE = ".study.lock"
# lock file -> its open file in this process: the lock lasts while the file is open, so for the process's life
_held: dict[Path, TextIO] = {}


class StudyLocked(RuntimeError):
    """Another process runs a study in the same results folder."""


def lock_study(results_dir: str | Path) -> Path:
    """Take the results folder's lock for the rest of this process (a second call changes nothing) and write
    this process's PID and command line into it; raise StudyLocked naming the folder and the holder when
    another process has it."""
    folder = Path(results_dir).resolve()
    path = folder / LOCK_FILE
    if path in _held:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")  # appends, never truncates: the holder's record is what a refusal names
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid, _, command = handle.read().partition("\n")
        handle.close()
        holder = f"process {pid} runs a study there ({command.strip()})" if pid else "a process is starting there"
        raise StudyLocked(
            f"results folder {folder} is in use: {holder} and holds {path}. Wait for it to "
            "finish or stop it (the lock goes with the process), or give this study another "
            "results_dir"
        ) from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n{shlex.join(sys.orig_argv)}\n")
    handle.flush()
    _held[path] = handle
    return path
