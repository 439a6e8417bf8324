"""Validated utterance tables read from a LibriSpeech-layout tree.

Layout: `<root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`, with the transcripts of a
chapter folder in `<speaker>-<chapter>.trans.txt` (lines `<utt id> <TRANSCRIPT>`). Every problem is
collected before deciding, so a broken corpus is reported in one pass instead of one rerun per file.

On disk a manifest is a TSV table under one line naming its corpus record (omni.data.corpus),
relative to the manifest; its audio paths are relative to that record's root. Both are in the
results folder, so a moved or copied results folder reads its own synthetic audio, and a LibriSpeech
tree moved elsewhere is followed through its record (config `librispeech.root`), not through every
manifest. In memory (build_manifest, read_manifest) audio paths are absolute. A table without the
line (written by hand, or before manifests named their record) has its paths read as written,
relative to its own folder.
"""
from __future__ import annotations

import os
import re
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
from tqdm import tqdm

from omni.atomic import atomic_path
from omni.data.audio import AudioError, AudioProbe, probe_audio
from omni.data.corpus import read_corpus_record, relative_to_file, resolve_from_file

MANIFEST_COLUMNS = ["utt_id", "audio_path", "duration_s", "num_samples", "sample_rate", "transcript"]
REJECT_COLUMNS = ["utt_id", "audio_path", "reason"]
AUDIO_SUFFIX = ".flac"
IGNORED_AUDIO_SUFFIX = ".wav"   # LibriSpeech audio is FLAC; WAV copies beside it are not read
IGNORED_LISTED = 5              # ignored files named in the log; the rest counted
CORPUS_LINE = "# corpus: "      # the first line of a manifest file, then the path of its corpus record
TRANSCRIPT_SUFFIX = ".trans.txt"
ON_BAD_FAIL = "fail"
ON_BAD_SKIP = "skip"
_WHITESPACE = re.compile(r"\s+")
PROGRESS_INTERVAL_S = 10.0   # seconds between progress lines in a job's log


class BadCorpusError(ValueError):
    """The corpus cannot give a usable manifest; the message lists every offending file."""


class ManifestError(ValueError):
    """A manifest file on disk does not have the expected shape."""


@dataclass
class _Utterance:
    """One utterance id found in a chapter folder, from its transcript line, its audio file or both."""

    utt_id: str
    audio_path: Path
    transcript: str | None = None
    transcript_line: str | None = None  # "<file>:<line>" of the transcript, when there is one
    has_audio: bool = False
    reasons: list[str] = field(default_factory=list)

    @property
    def location(self) -> str:
        return self.transcript_line or str(self.audio_path)


@dataclass(frozen=True)
class _Reject:
    utt_id: str
    path: str
    reason: str


def build_manifest(
    corpus_info: Mapping[str, Any], split: str, data_cfg: Mapping[str, Any], workers: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, rejects) of `split`; with `data.on_bad_utterance: fail` any reject raises BadCorpusError.
    Audio headers are probed by `workers` threads (file I/O and libsndfile release the GIL); the
    result does not depend on their number."""
    folders = _split_folders(corpus_info, split)
    rejects: list[_Reject] = []
    utterances: list[_Utterance] = []
    for folder in folders:
        utterances.extend(_scan_subset(folder, rejects))
    _report_ignored_audio(split, folders)
    _mark_duplicates(utterances)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        probes = list(tqdm(pool.map(_probe, utterances), total=len(utterances), desc=f"manifest {split}",
                           unit="utt", file=sys.stderr, mininterval=PROGRESS_INTERVAL_S))
    rows = []
    for utt, probe in zip(utterances, probes):
        row = _check_utterance(utt, probe, data_cfg)
        if utt.reasons:
            rejects.append(_Reject(utt.utt_id, str(utt.audio_path), "; ".join(utt.reasons)))
        else:
            rows.append(row)
    if rejects and data_cfg["on_bad_utterance"] == ON_BAD_FAIL:
        raise BadCorpusError(_failure_message(split, rejects))
    if not rows:
        raise BadCorpusError(
            f"split '{split}' has no usable utterances in {', '.join(map(str, folders))}"
            f" ({len(rejects)} rejected)"
        )
    kept = pd.DataFrame(rows, columns=MANIFEST_COLUMNS).sort_values("utt_id", kind="stable")
    rejected = pd.DataFrame(
        [(r.utt_id, r.path, r.reason) for r in rejects], columns=REJECT_COLUMNS
    ).sort_values(["utt_id", "audio_path"], kind="stable")
    return kept.reset_index(drop=True), rejected.reset_index(drop=True)


def write_manifest(path: str | os.PathLike, frame: pd.DataFrame, corpus_record: str | os.PathLike | None) -> None:
    """Write `frame` (absolute audio paths) as a manifest file naming `corpus_record`, whose root the
    paths are written relative to (None: no record line, paths relative to the manifest's folder)."""
    root = _audio_root(path, corpus_record)
    relative = frame.assign(audio_path=[os.path.relpath(audio, root) for audio in frame["audio_path"]])
    with atomic_path(path) as tmp:
        with open(tmp, "w") as handle:
            if corpus_record is not None:
                handle.write(f"{CORPUS_LINE}{relative_to_file(corpus_record, path)}\n")
            relative.to_csv(handle, sep="\t", index=False)


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Load a manifest with absolute audio paths; text columns stay text ("NA" is a word, not a gap)."""
    record = manifest_corpus_record(path)
    root = _audio_root(path, record)
    try:
        frame = pd.read_csv(path, sep="\t", dtype={"utt_id": str, "audio_path": str, "transcript": str},
                            keep_default_na=False, skiprows=1 if record else 0)
    except pd.errors.ParserError as error:
        raise ManifestError(f"manifest {path} is not a readable TSV table: {error}") from error
    if list(frame.columns) != MANIFEST_COLUMNS:
        raise ManifestError(
            f"manifest {path} has columns {list(frame.columns)}, expected {MANIFEST_COLUMNS}"
            " (was it written by omni.data.manifest.write_manifest?)"
        )
    frame["audio_path"] = [os.path.normpath(os.path.join(root, audio)) for audio in frame["audio_path"]]
    return frame


def manifest_corpus_record(path: str | os.PathLike) -> Path | None:
    """The corpus record a manifest file names; None for a table without the line."""
    with open(path) as handle:
        first = handle.readline().rstrip("\n")
    return resolve_from_file(first[len(CORPUS_LINE):], path) if first.startswith(CORPUS_LINE) else None


def _audio_root(manifest: str | os.PathLike, corpus_record: str | os.PathLike | None) -> str:
    """What a manifest's audio paths are relative to: its corpus record's root, or its own folder."""
    if corpus_record is None:
        return os.path.dirname(os.path.abspath(manifest))
    return read_corpus_record(corpus_record)["root"]


def _split_folders(corpus_info: Mapping[str, Any], split: str) -> list[Path]:
    """Missing subset folders are a corpus-level error: there is no utterance to reject."""
    subsets = corpus_info["subsets"].get(split)
    if not subsets:
        raise BadCorpusError(f"corpus '{corpus_info['corpus']}' lists no subsets for split '{split}'")
    root = Path(corpus_info["root"]).absolute()
    folders = [root / subset for subset in subsets]
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        raise BadCorpusError(f"split '{split}': subset folder(s) not found: {', '.join(missing)}")
    return folders


def _scan_subset(folder: Path, rejects: list[_Reject]) -> list[_Utterance]:
    """Pair transcript lines with audio files folder by folder; malformed lines go straight to rejects."""
    by_key: dict[tuple[Path, str], list[_Utterance]] = defaultdict(list)
    for trans_file in sorted(folder.rglob(f"*{TRANSCRIPT_SUFFIX}")):
        for utt in _read_transcripts(trans_file, rejects):
            by_key[(trans_file.parent, utt.utt_id)].append(utt)
    for audio in sorted(folder.rglob(f"*{AUDIO_SUFFIX}")):
        key = (audio.parent, audio.name[: -len(AUDIO_SUFFIX)])
        if key not in by_key:
            by_key[key].append(_Utterance(key[1], audio))
        for utt in by_key[key]:
            utt.has_audio = True
    return [utt for group in by_key.values() for utt in group]


def _report_ignored_audio(split: str, folders: list[Path]) -> None:
    """WAV files are not LibriSpeech's audio: say so, or a converted tree loses them without a word."""
    ignored = sorted(path for folder in folders for path in folder.rglob(f"*{IGNORED_AUDIO_SUFFIX}"))
    if not ignored:
        return
    named = ", ".join(map(str, ignored[:IGNORED_LISTED]))
    more = f" and {len(ignored) - IGNORED_LISTED} more" if len(ignored) > IGNORED_LISTED else ""
    print(f"split '{split}': {len(ignored)} {IGNORED_AUDIO_SUFFIX} file(s) ignored (the manifest reads"
          f" {AUDIO_SUFFIX} audio only; convert them to FLAC to use them): {named}{more}", file=sys.stderr)


def _read_transcripts(trans_file: Path, rejects: list[_Reject]) -> list[_Utterance]:
    """Ids must carry the file's `<speaker>-<chapter>-` prefix; a line without one has lost its id."""
    prefix = trans_file.name[: -len(TRANSCRIPT_SUFFIX)] + "-"
    try:
        lines = trans_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        rejects.append(_Reject("", str(trans_file), f"transcript file is not UTF-8 text ({error})"))
        return []
    utterances = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():  # a blank line carries no utterance (editors leave trailing ones)
            continue
        parts = _WHITESPACE.split(line.strip(), maxsplit=1)
        utt_id = parts[0]
        if not utt_id.startswith(prefix) or len(utt_id) == len(prefix):
            rejects.append(_Reject("", str(trans_file), (
                f"malformed transcript line {number} of {trans_file}: no utterance id"
                f" '{prefix}<utt>' at its start: {line.strip()[:60]!r}")))
            continue
        utterances.append(_Utterance(
            utt_id=utt_id,
            audio_path=trans_file.parent / f"{utt_id}{AUDIO_SUFFIX}",
            transcript=parts[1] if len(parts) > 1 else "",
            transcript_line=f"{trans_file}:{number}",
        ))
    return utterances


def _mark_duplicates(utterances: list[_Utterance]) -> None:
    """Every copy is rejected: which one is right is not ours to guess."""
    by_id: dict[str, list[_Utterance]] = defaultdict(list)
    for utt in utterances:
        by_id[utt.utt_id].append(utt)
    for copies in by_id.values():
        if len(copies) < 2:
            continue
        for utt in copies:
            others = ", ".join(other.location for other in copies if other is not utt)
            utt.reasons.append(f"duplicate utterance id (also at {others})")


def _probe(utt: _Utterance) -> AudioProbe | AudioError | None:
    """The audio's probe, or why it cannot be used; None without an audio file."""
    if not utt.has_audio:
        return None
    try:
        return probe_audio(utt.audio_path)
    except AudioError as error:
        return error


def _check_utterance(utt: _Utterance, probe: AudioProbe | AudioError | None,
                     data_cfg: Mapping[str, Any]) -> list[Any] | None:
    """Append every reason the utterance is unusable to `utt.reasons`; return its manifest row."""
    _check_transcript(utt, data_cfg["alphabet"])
    if probe is None:
        wav = utt.audio_path.with_suffix(IGNORED_AUDIO_SUFFIX)
        beside = f" ({wav.name} is there, but the manifest reads {AUDIO_SUFFIX} only)" if wav.is_file() else ""
        utt.reasons.append(f"transcript line {utt.transcript_line} has no audio file{beside}")
        return None
    if isinstance(probe, AudioError):
        utt.reasons.append(probe.reason)
        return None
    if probe.channels != 1:
        utt.reasons.append(f"{probe.channels} channels, expected mono")
    if probe.num_samples == 0:
        utt.reasons.append("zero-length audio (0 samples)")
    if probe.sample_rate != data_cfg["sample_rate"] and not data_cfg["resample"]:
        utt.reasons.append(
            f"sample rate {probe.sample_rate} Hz, expected {data_cfg['sample_rate']} Hz"
            " (config data.resample is false)"
        )
    duration = probe.num_samples / probe.sample_rate
    if duration > data_cfg["max_duration_s"]:
        utt.reasons.append(f"duration {duration:.2f} s exceeds config data.max_duration_s = {data_cfg['max_duration_s']}")
    return [utt.utt_id, str(utt.audio_path), duration, probe.num_samples, probe.sample_rate, utt.transcript]


def _check_transcript(utt: _Utterance, alphabet: str) -> None:
    if utt.transcript is None:
        utt.reasons.append(
            f"audio file has no transcript line in {utt.audio_path.parent}"
            f" (expected in a *{TRANSCRIPT_SUFFIX} file there)"
        )
        return
    if not utt.transcript:
        utt.reasons.append(f"empty transcript at {utt.transcript_line}")
        return
    outside = sorted(set(utt.transcript) - set(alphabet))
    if outside:
        utt.reasons.append(
            f"characters outside config data.alphabet at {utt.transcript_line}: "
            + " ".join(repr(char) for char in outside)
        )


def _failure_message(split: str, rejects: list[_Reject]) -> str:
    lines = [f"  {r.path}: {r.reason}" for r in sorted(rejects, key=lambda r: (r.path, r.reason))]
    return (
        f"{len(rejects)} bad utterance(s) in split '{split}' (config data.on_bad_utterance is"
        f" '{ON_BAD_FAIL}'; '{ON_BAD_SKIP}' would drop them into the rejects table):\n" + "\n".join(lines)
    )
