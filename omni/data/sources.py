"""A user's own corpus (config `corpus: manifests`): lhotse manifests, Kaldi data directories, plain tables.

Each reader lists the utterances of one split as `Listed` entries (id, audio file, optional segment,
transcript, speaker, and where it is listed: `<file>:<line>`); omni.data.manifest then probes, checks
and writes them exactly as it does a LibriSpeech tree, so every stage downstream is unchanged.
Relative audio paths are relative to the folder of the file that lists them (a moved corpus moves
whole). Segments name a part of a recording and are read from it in place (no copies). A reader
raises SourceError for what no utterance can be blamed for (a missing wav.scp, an unknown column);
a line it cannot use becomes a reject naming its file and line.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMATS = ("lhotse", "kaldi", "table")
TABLE_REQUIRED = ("audio_path", "transcript")
TABLE_OPTIONAL = ("utt_id", "speaker", "start_s", "end_s")
TABLE_DELIMITERS = {".tsv": "\t", ".csv": ","}
KALDI_FILES = ("wav.scp", "text", "utt2spk")
KALDI_SEGMENTS = "segments"
KALDI_TO_THE_END = -1.0  # a Kaldi segment ending at -1 runs to the end of its recording


class SourceError(ValueError):
    """A corpus listing that cannot be read at all; the message names the file (and line)."""


@dataclass
class Listed:
    """One utterance as a listing names it; `reasons` collects why it cannot be used."""

    utt_id: str
    audio_path: Path
    location: str  # "<file>:<line>" of the line that lists it
    transcript: str | None = None  # None: no transcript line
    speaker: str = ""  # "": the listing names no speaker
    start_s: float = 0.0
    end_s: float | None = None  # None: to the end of the recording
    has_audio: bool = True
    listed_audio: bool = True  # the listing names the audio file (LibriSpeech's is found beside the text)
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reject:
    utt_id: str
    location: str  # the audio file, or "<file>:<line>" of the listing
    reason: str


def source_files(source: Mapping[str, Any]) -> list[Path]:
    """The files a split's listing is read from (config `manifests.<split>`), for the corpus check."""
    if source["format"] == "kaldi":
        return [Path(source["dir"]) / name for name in KALDI_FILES]
    if source["format"] == "table":
        return [Path(source["table"])]
    return [Path(source[key]) for key in ("cuts", "recordings", "supervisions") if key in source]


def read_source(source: Mapping[str, Any], rejects: list[Reject]) -> list[Listed]:
    """The utterances one split's listing names; unusable lines are appended to `rejects`."""
    readers: dict[str, Callable[[Mapping[str, Any], list[Reject]], list[Listed]]] = {
        "lhotse": read_lhotse,
        "kaldi": read_kaldi,
        "table": read_table,
    }
    return readers[source["format"]](source, rejects)


def read_lhotse(source: Mapping[str, Any], rejects: list[Reject]) -> list[Listed]:
    """A CutSet (`cuts`), or a RecordingSet + SupervisionSet pair, read with lhotse itself: one
    utterance per supervision, its segment placed in the recording (a cut's offset plus the
    supervision's)."""
    from lhotse import CutSet, RecordingSet, SupervisionSet, load_manifest

    if "cuts" in source:
        cuts = _load(load_manifest, Path(source["cuts"]), CutSet)
        entries = (
            (f"{source['cuts']}:{line}", getattr(cut, "recording", None), cut.start + sup.start, sup)
            for line, cut in enumerate(cuts, start=1)
            for sup in cut.supervisions
        )
    else:
        recordings = _load(load_manifest, Path(source["recordings"]), RecordingSet)
        supervisions = _load(load_manifest, Path(source["supervisions"]), SupervisionSet)
        by_id = {recording.id: recording for recording in recordings}
        entries = (
            (f"{source['supervisions']}:{line}", by_id.get(sup.recording_id), sup.start, sup)
            for line, sup in enumerate(supervisions, start=1)
        )
    listed = []
    for location, recording, start, sup in entries:
        if recording is None:
            where = (
                f"is not in {source['recordings']}"
                if "recordings" in source
                else "is not its cut's one recording (a mixed or padded cut?)"
            )
            rejects.append(
                Reject(sup.id, location, f"recording '{sup.recording_id}' of supervision '{sup.id}' {where}")
            )
            continue
        files = {s.source for s in recording.sources if s.type == "file"}
        if len(files) != 1 or len(recording.sources) != 1:
            rejects.append(
                Reject(
                    sup.id,
                    location,
                    f"recording '{recording.id}' is not one audio file"
                    f" (sources: {[(s.type, s.source) for s in recording.sources]})",
                )
            )
            continue
        listing = Path(location.rsplit(":", 1)[0])
        listed.append(
            Listed(
                sup.id,
                _resolve(next(iter(files)), listing),
                location,
                sup.text or "",
                sup.speaker or "",
                start,
                start + sup.duration,
            )
        )
    return listed


def read_kaldi(source: Mapping[str, Any], rejects: list[Reject]) -> list[Listed]:
    """`wav.scp` (recording id, plain path), `text`, `utt2spk`, and `segments` when utterances are cut
    from longer recordings (without it, an utterance is the whole recording of its id)."""
    folder = Path(source["dir"])
    for name in KALDI_FILES:
        if not (folder / name).is_file():
            raise SourceError(f"Kaldi data directory {folder}: no {name} (config key manifests.<split>.dir)")
    wavs = _kaldi_table(folder / "wav.scp", 2, rejects)
    texts = _kaldi_table(folder / "text", 1, rejects)
    speakers = _kaldi_table(folder / "utt2spk", 2, rejects)
    segments = _kaldi_table(folder / KALDI_SEGMENTS, 4, rejects) if (folder / KALDI_SEGMENTS).is_file() else None
    listed = []
    for utt_id, (text, location) in texts.items():
        recording_id, start, end = utt_id, 0.0, None
        if segments is not None:
            if utt_id not in segments:
                rejects.append(
                    Reject(utt_id, location, f"utterance '{utt_id}' has no line in {folder / KALDI_SEGMENTS}")
                )
                continue
            fields, segment_location = segments[utt_id]
            recording_id, start_text, end_text = fields.split()[:3]
            try:
                start, end = float(start_text), float(end_text)
            except ValueError:
                rejects.append(Reject(utt_id, segment_location, f"start and end are not seconds: {fields!r}"))
                continue
            end = None if end == KALDI_TO_THE_END else end
        if recording_id not in wavs:
            rejects.append(Reject(utt_id, location, f"recording '{recording_id}' is not in {folder / 'wav.scp'}"))
            continue
        path, wav_location = wavs[recording_id]
        if path.endswith("|") or len(path.split()) > 1:
            rejects.append(
                Reject(
                    utt_id,
                    wav_location,
                    f"not a plain path (piped commands and"
                    f" extended filenames are not read; give the audio file): {path!r}",
                )
            )
            continue
        speaker = speakers[utt_id][0] if utt_id in speakers else ""
        listed.append(Listed(utt_id, _resolve(path, folder / "wav.scp"), location, text, speaker, start, end))
    listed_ids = set(texts)
    for utt_id, (_, location) in (segments or {}).items():
        if utt_id not in listed_ids:
            rejects.append(Reject(utt_id, location, f"segment '{utt_id}' has no transcript line in {folder / 'text'}"))
    return listed


def read_table(source: Mapping[str, Any], rejects: list[Reject]) -> list[Listed]:
    """TSV (.tsv) or CSV (.csv) with a header naming its columns: audio_path and transcript, and any of
    utt_id (default: the audio file's name without suffix), speaker, start_s and end_s (seconds)."""
    path = Path(source["table"])
    delimiter = TABLE_DELIMITERS.get(path.suffix.lower())
    if delimiter is None:
        raise SourceError(f"table {path}: the name must end in {' or '.join(TABLE_DELIMITERS)} (its delimiter)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SourceError(f"table {path} cannot be read as UTF-8 text ({error})") from error
    rows = csv.reader(lines, delimiter=delimiter)
    header = next(rows, None)
    if header is None:
        raise SourceError(f"table {path} is empty: line 1 must name its columns")
    unknown = [name for name in header if name not in TABLE_REQUIRED + TABLE_OPTIONAL]
    missing = [name for name in TABLE_REQUIRED if name not in header]
    if unknown or missing or len(set(header)) != len(header):
        raise SourceError(
            f"{path}:1: columns {header}: "
            + "; ".join(
                filter(
                    None,
                    [
                        f"unknown {unknown}" if unknown else "",
                        f"missing {missing}" if missing else "",
                        "a column is named twice" if len(set(header)) != len(header) else "",
                    ],
                )
            )
            + f" (known: {list(TABLE_REQUIRED + TABLE_OPTIONAL)})"
        )
    if ("start_s" in header or "end_s" in header) and "utt_id" not in header:
        raise SourceError(
            f"{path}:1: a table of segments (start_s / end_s) needs a utt_id column: segments of"
            " one file would share its name"
        )
    listed = []
    for number, fields in enumerate(rows, start=2):
        location = f"{path}:{number}"
        if not fields:
            continue
        if len(fields) != len(header):
            rejects.append(Reject("", location, f"{len(fields)} fields, the header names {len(header)}"))
            continue
        row = dict(zip(header, fields))
        audio = _resolve(row["audio_path"], path)
        utt_id = row.get("utt_id") or audio.name.split(".", 1)[0]
        try:
            start = float(row["start_s"]) if row.get("start_s") else 0.0
            end = float(row["end_s"]) if row.get("end_s") else None
        except ValueError:
            rejects.append(
                Reject(
                    utt_id, location, f"start_s / end_s are not seconds: {row.get('start_s')!r}, {row.get('end_s')!r}"
                )
            )
            continue
        listed.append(Listed(utt_id, audio, location, row["transcript"], row.get("speaker", ""), start, end))
    return listed


def _load(load: Callable[[Path], Any], path: Path, kind: type[Iterable[Any]]) -> Iterator[Any]:
    """A lhotse manifest of the kind expected, or one error naming the file."""
    try:
        manifest = load(path)
    except Exception as error:  # lhotse raises what its parsers raise: any of them means the same to a user
        raise SourceError(f"lhotse manifest {path} cannot be read ({type(error).__name__}: {error})") from error
    if not isinstance(manifest, kind):
        raise SourceError(f"lhotse manifest {path} holds a {type(manifest).__name__}, expected a {kind.__name__}")
    return iter(manifest)


def _kaldi_table(path: Path, fields: int, rejects: list[Reject]) -> dict[str, tuple[str, str]]:
    """id -> (rest of the line, "<file>:<line>"); `fields`: how many the line must have, id included
    (`text` needs only the id: an empty transcript is the checker's to reject, with its location)."""
    table: dict[str, tuple[str, str]] = {}
    duplicated: dict[str, str] = {}  # id -> where it was first listed: every copy is rejected
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.strip().split(maxsplit=1)
        location = f"{path}:{number}"
        rest = parts[1] if len(parts) > 1 else ""
        if 1 + len(rest.split()) < fields:
            rejects.append(Reject(parts[0], location, f"{fields} fields expected: {line.strip()[:60]!r}"))
            continue
        if parts[0] in table or parts[0] in duplicated:
            if parts[0] in table:
                first = duplicated[parts[0]] = table.pop(parts[0])[1]
                rejects.append(Reject(parts[0], first, f"duplicate id '{parts[0]}' (also at {location})"))
            rejects.append(Reject(parts[0], location, f"duplicate id '{parts[0]}' (also at {duplicated[parts[0]]})"))
            continue
        table[parts[0]] = (rest, location)
    return table


def _resolve(audio: str, listing: Path) -> Path:
    return Path(os.path.normpath(Path(listing).parent / os.path.expanduser(audio)))
