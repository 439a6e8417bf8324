"""Training checkpoints: a folder outside Snakemake's declared outputs, newest one resumes.

Snakemake deletes declared outputs before re-running a job, so checkpoints must live
elsewhere for a killed job to resume. Each file is a plain state dict (weights_only loads).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from omni.atomic import load_torch, save_torch

KEEP_LAST = 2
_NAME = re.compile(r"^step(\d{8})\.pt$")


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

    def newest(self) -> dict[str, Any] | None:
        for _, path in reversed(self._files()):
            state = load_torch(path)
            if state.get("fingerprint") == self.fingerprint:
                return state
        return None

    def save(self, step: int, state: dict[str, Any]) -> Path:
        path = self.folder / f"step{step:08d}.pt"
        save_torch(path, {**state, "fingerprint": self.fingerprint, "step": step})
        for _, old in self._files()[:-KEEP_LAST]:
            old.unlink()
        return path
