"""What the project's writes leave on disk: files with the mode open() would give them (the umask
decides), and a write the filesystem refuses (full, over quota, read-only) told as such, naming the
path and the free space, with nothing half-written kept, the finished file it would have replaced (and
the older checkpoints) intact, and a rerun after freeing space working. The refused writes are fault
probes (tests/faults.py)."""

from __future__ import annotations

import errno
import gc
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch

from omni.asr.checkpoints import CheckpointFolder
from omni.atomic import atomic_path, load_torch, save_torch, write_dataframe, write_json, write_text
from omni.data.synth_corpus import SPLITS, build_synth_corpus
from omni.write_errors import DiskWriteError
from tests.faults import FaultRecorder
from tests.test_synth import tiny_spec

SMALL_FS = "2m"  # tmpfs size: a few tiny files fit, a checkpoint does not
FREE_FOR_AUDIO = 300_000  # bytes left free for the corpus test: far less than its ~0.9 MB of FLAC
CHECKPOINT_FEATURES = 640  # a 640 x 640 float32 layer: a 1.6 MB checkpoint
SIZE = r"\d+(\.\d)? [kMGTP]?B"
FREE_SPACE = re.compile(rf"\({SIZE} of {SIZE}(, \d+ inodes)? free on the filesystem holding ")


@pytest.mark.parametrize("umask", [0o022, 0o007])
def test_outputs_get_the_mode_open_would_give_them(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        written = [tmp_path / "table.md", tmp_path / "record.json", tmp_path / "model.pt", tmp_path / "table.tsv"]
        write_text(written[0], "| a |\n")
        write_json(written[1], {"a": 1})
        save_torch(written[2], {"w": torch.zeros(2)})
        write_dataframe(written[3], pd.DataFrame({"a": [1]}))
        plain = tmp_path / "plain.txt"
        with open(plain, "w") as handle:
            handle.write("x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


REFUSALS = pytest.mark.parametrize(
    "code, what, todo",
    [
        (errno.ENOSPC, "no space left on the device", "free space there"),
        (errno.EDQUOT, "your disk quota on that filesystem is used up", "ask for a larger quota"),
        (errno.EROFS, "the filesystem is read-only", "point config key results_dir at a writable filesystem"),
    ],
)


@pytest.mark.fault("disk full")
@REFUSALS
def test_a_refused_write_names_the_path_the_free_space_and_what_to_do(
    tmp_path: Path, code: int, what: str, todo: str, fault: FaultRecorder
) -> None:
    target = tmp_path / "tables" / "wer.csv"
    with pytest.raises(DiskWriteError) as caught:
        with atomic_path(target) as tmp:
            tmp.write_text("half a table")
            raise OSError(code, os.strerror(code))  # what the writer's write() or close() got
    message = str(caught.value)
    fault.named(message, str(target))
    assert message.startswith(f"cannot write {target}: {what} ")
    assert FREE_SPACE.search(message) and todo in message and os.strerror(code) in message
    assert list(target.parent.iterdir()) == [], "nothing half-written is kept"
    fault.survived(
        f"{errno.errorcode[code]} told as such with the free space and what to do; nothing half-written kept"
    )


@pytest.mark.fault("disk full")
@REFUSALS
def test_a_refused_write_keeps_the_finished_file_it_would_have_replaced(
    tmp_path: Path, code: int, what: str, todo: str, fault: FaultRecorder
) -> None:
    """A rerun's write that fails leaves the previous run's finished file as it was, not half of the new one."""
    target = tmp_path / "tables" / "wer.csv"
    write_text(target, "| the finished table |\n")
    with pytest.raises(DiskWriteError) as caught:
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new table")
            raise OSError(code, os.strerror(code))
    fault.named(str(caught.value), str(target))
    assert str(caught.value).startswith(f"cannot write {target}: {what} ")
    fault.data_lost(int(target.read_text() != "| the finished table |\n"), "finished files changed")
    assert list(target.parent.iterdir()) == [target]
    fault.survived(f"{errno.errorcode[code]}: the finished file stays whole and nothing else is left")


def test_an_opaque_error_on_a_disk_with_room_is_left_as_it_is(tmp_path: Path) -> None:
    """torch's iostream error without an errno: the probe write is taken, so it is not a disk error."""
    target = tmp_path / "model.pt"
    with pytest.raises(RuntimeError) as caught:
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half a checkpoint")
            raise RuntimeError("basic_ios::clear: iostream error")
    assert type(caught.value) is RuntimeError and str(caught.value) == "basic_ios::clear: iostream error"
    assert list(tmp_path.iterdir()) == [], "neither the partial file nor the probe is left"


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of SMALL_FS, unmounted afterwards whatever the test did."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the errno and opaque-error cases above run unprivileged)")
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_FS}", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        gc.collect()  # a failed torch.save's writer, held by its traceback, still has the partial file open
        subprocess.run(["umount", str(mount)], check=True)


def fill(folder: Path, leave_free: int) -> Path:
    """A filler file taking all but about `leave_free` bytes of the filesystem holding `folder`."""
    filler = folder / "filler.bin"
    filler.write_bytes(bytes(max(0, os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize - leave_free)))
    return filler


@pytest.mark.fault("disk full")
@pytest.mark.parametrize(
    ("writer", "wrapped"),
    [
        ("checkpoint", "[OSError: [Errno 28]"),  # checkpoints are serialised in memory, then written as bytes
        ("model", "[RuntimeError: "),  # torch.save straight to the file: its opaque iostream error
    ],
)
def test_a_model_or_checkpoint_that_does_not_fit_says_so_and_a_rerun_after_freeing_space_works(
    small_fs: Path, writer: str, wrapped: str, fault: FaultRecorder
) -> None:
    filler = fill(small_fs, leave_free=CHECKPOINT_FEATURES**2)  # a quarter of the file fits
    state = torch.nn.Linear(CHECKPOINT_FEATURES, CHECKPOINT_FEATURES).state_dict()
    folder = CheckpointFolder(small_fs / "checkpoints", "job")
    path = small_fs / "checkpoints" / "step00000100.pt"

    def write() -> None:
        if writer == "checkpoint":
            folder.save(100, {"model": state})
        else:
            save_torch(path, {"model": state})

    with pytest.raises(DiskWriteError) as caught:
        write()
    message = str(caught.value)
    fault.named(message, str(path))
    assert message.startswith(f"cannot write {path}: no space left on the device ")
    assert FREE_SPACE.search(message) and wrapped in message, "the library's error, told as disk full"
    assert sorted(p.name for p in small_fs.rglob("*")) == ["checkpoints", "filler.bin"], "no partial file"
    filler.unlink()
    write()
    saved = folder.resume(print) if writer == "checkpoint" else load_torch(path)
    assert torch.equal(saved["model"]["weight"], state["weight"])
    fault.survived(
        f"a real full tmpfs: the {writer} write told as disk full, no partial file; after freeing "
        "space the rerun wrote it whole"
    )


@pytest.mark.fault("disk full")
def test_a_checkpoint_that_does_not_fit_leaves_the_older_ones_resumable(small_fs: Path, fault: FaultRecorder) -> None:
    """The newest checkpoint is written before the oldest is deleted: a full disk costs the new one only."""
    folder = CheckpointFolder(small_fs / "checkpoints", "job")
    older = {step: {"model": torch.nn.Linear(32, 32).state_dict()} for step in (100, 200)}
    for step, state in older.items():
        folder.save(step, state)
    fill(small_fs, leave_free=CHECKPOINT_FEATURES**2)
    with pytest.raises(DiskWriteError) as caught:
        folder.save(300, {"model": torch.nn.Linear(CHECKPOINT_FEATURES, CHECKPOINT_FEATURES).state_dict()})
    fault.named(str(caught.value), str(folder.folder / "step00000300.pt"))
    assert str(caught.value).startswith(f"cannot write {folder.folder / 'step00000300.pt'}: no space left")
    kept = sorted(p.name for p in folder.folder.iterdir())
    fault.data_lost(len({"step00000100.pt", "step00000200.pt"} - set(kept)), "older checkpoints deleted")
    assert kept == ["step00000100.pt", "step00000200.pt"]
    resumed = folder.resume(print)
    assert resumed["step"] == 200 and torch.equal(resumed["model"]["weight"], older[200]["model"]["weight"])
    fault.survived(
        "a real full tmpfs: the new checkpoint refused and named; both older ones kept, the newest "
        "of them resumed intact"
    )


@pytest.mark.fault("disk full")
def test_a_corpus_that_does_not_fit_says_so_and_leaves_no_partial_tree(small_fs: Path, fault: FaultRecorder) -> None:
    spec = tiny_spec()
    filler = fill(small_fs, leave_free=FREE_FOR_AUDIO)
    with pytest.raises(DiskWriteError) as caught:
        build_synth_corpus(spec, small_fs / "synth", workers=2)
    message = str(caught.value)
    fault.named(message, str(small_fs / "synth.partial"))
    assert message.startswith(f"cannot write {small_fs / 'synth.partial'}: no space left on the device ")
    assert FREE_SPACE.search(message) and "[LibsndfileError: " in message, "libsndfile's System error, told"
    assert sorted(p.name for p in small_fs.iterdir()) == ["filler.bin"], "the partial tree is removed"
    filler.unlink()
    stats = build_synth_corpus(spec, small_fs / "synth", workers=2)
    assert stats["utterances"] == {split: 6 for split in SPLITS}
    assert len(list((small_fs / "synth").rglob("*.flac"))) == 6 * len(SPLITS)
    fault.survived(
        "a real full tmpfs: the corpus build told as disk full, its partial tree removed; after "
        "freeing space the rebuild wrote every utterance"
    )
