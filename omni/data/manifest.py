"""Validated utterance tables read from a LibriSpeech-layout tree, or from a user's own listing.

A user's corpus (`corpus: manifests`: lhotse manifests, a Kaldi data directory or a plain table) is
listed by omni.data.sources and checked here like a LibriSpeech tree. Transcripts are normalised as
config `data.text` says (omni.data.text); multi-channel audio is kept and downmixed when read (the
mean of its channels, omni.data.audio); a segment is a sample range of its recording (`offset_samples`,
`num_samples`, at the file's rate), read in place.

LibriSpeech layout: `<root>/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`, with the transcripts of a
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
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from omni.atomic import atomic_path
from omni.data.audio import AudioError, AudioProbe, AudioSpan, probe_audio
from omni.data.corpus import read_corpus_record, relative_to_file, resolve_from_file
from omni.data.sources import Listed, Reject, read_source
from omni.data.text import TextNormaliser
from omni.data.voices import id_speaker

MANIFEST_COLUMNS = [
    "utt_id",
    "audio_path",
    "duration_s",
    "num_samples",
    "sample_rate",
    "transcript",
    "speaker",
    "offset_samples",
]
REJECT_COLUMNS = ["utt_id", "location", "reason"]  # location: the audio file, or the listing's <file>:<line>
AUDIO_SUFFIX = ".flac"
IGNORED_AUDIO_SUFFIX = ".wav"  # LibriSpeech audio is FLAC; WAV copies beside it are not read
IGNORED_LISTED = 5  # ignored files named in the log; the rest counted
CORPUS_LINE = "# corpus: "  # the first line of a manifest file, then the path of its corpus record
TRANSCRIPT_SUFFIX = ".trans.txt"
ON_BAD_FAIL = "fail"
ON_BAD_SKIP = "skip"
SEGMENT_END_SLACK_S = 0.01  # a segment may end this far past its recording (listings round times to 10 ms)
_WHITESPACE = re.compile(r"\s+")
PROGRESS_INTERVAL_S = 10.0  # seconds between progress lines in a job's log


class BadCorpusError(ValueError):
    """The corpus cannot give a usable manifest; the message lists every offending file."""


class ManifestError(ValueError):
    """A manifest file on disk does not have the expected shape."""


def build_manifest(
    corpus_info: Mapping[str, Any], split: str, data_cfg: Mapping[str, Any], workers: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept, rejects) of `split`; with `data.on_bad_utterance: fail` any reject raises BadCorpusError.
    Audio headers are probed by `workers` threads (file I/O and libsndfile release the GIL); the
    result does not depend on their number."""
    rejects: list[Reject] = []
    if corpus_info["corpus"] == "manifests":
        source = corpus_info["sources"][split]
        utterances = read_source(source, rejects)
        for utt in utterances:
            utt.has_audio = utt.audio_path.is_file()
        origin = f"{source['format']} listing {', '.join(str(v) for k, v in source.items() if k != 'format')}"
    else:
        folders = _split_folders(corpus_info, split)
        utterances = [utt for folder in folders for utt in _scan_subset(folder, rejects)]
        _report_ignored_audio(split, folders)
        origin = ", ".join(map(str, folders))
    _mark_duplicates(utterances)
    paths = sorted({utt.audio_path for utt in utterances if utt.has_audio})  # segments share a recording
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        probes = dict(
            zip(
                paths,
                tqdm(
                    pool.map(_probe, paths),
                    total=len(paths),
                    desc=f"manifest {split}",
                    unit="file",
                    file=sys.stderr,
                    mininterval=PROGRESS_INTERVAL_S,
                ),
            )
        )
    normalise = TextNormaliser.from_section(data_cfg)
    rows = []
    for utt in utterances:
        row = _check_utterance(utt, probes.get(utt.audio_path), data_cfg, normalise)
        if utt.reasons:
            rejects.append(Reject(utt.utt_id, str(utt.audio_path), "; ".join(utt.reasons)))
        else:
            rows.append(row)
    if rejects and data_cfg["on_bad_utterance"] == ON_BAD_FAIL:
        raise BadCorpusError(_failure_message(split, rejects))
    if not rows:
        raise BadCorpusError(f"split '{split}' has no usable utterances in {origin} ({len(rejects)} rejected)")
    kept = pd.DataFrame(rows, columns=MANIFEST_COLUMNS).sort_values("utt_id", kind="stable")
    rejected = pd.DataFrame([(r.utt_id, r.location, r.reason) for r in rejects], columns=REJECT_COLUMNS).sort_values(
        ["utt_id", "location"], kind="stable"
    )
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
        frame = pd.read_csv(
            path,
            sep="\t",
            dtype={"utt_id": str, "audio_path": str, "transcript": str, "speaker": str},
            keep_default_na=False,
            skiprows=1 if record else 0,
        )
    except pd.errors.ParserError as error:
        raise ManifestError(f"manifest {path} is not a readable TSV table: {error}") from error
    if list(frame.columns) != MANIFEST_COLUMNS:
        raise ManifestError(
            f"manifest {path} has columns {list(frame.columns)}, expected {MANIFEST_COLUMNS}"
            " (was it written by omni.data.manifest.write_manifest? Manifests before 2026-12-03 lacked speaker and"
            " offset_samples: rerun the study's manifest jobs, `snakemake --forcerun manifest`)"
        )
    frame["audio_path"] = [os.path.normpath(os.path.join(root, audio)) for audio in frame["audio_path"]]
    return frame


def audio_spans(manifest: pd.DataFrame) -> list[AudioSpan]:
    """Where each utterance's samples are (manifest order)."""
    return [
        AudioSpan(path, int(offset), int(frames))
        for path, offset, frames in zip(manifest["audio_path"], manifest["offset_samples"], manifest["num_samples"])
    ]


def manifest_corpus_record(path: str | os.PathLike) -> Path | None:
    """The corpus record a manifest file names; None for a table without the line."""
    with open(path) as handle:
        first = handle.readline().rstrip("\n")
    return resolve_from_file(first[len(CORPUS_LINE) :], path) if first.startswith(CORPUS_LINE) else None


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


def _scan_subset(folder: Path, rejects: list[Reject]) -> list[Listed]:
    """Pair transcript lines with audio files folder by folder; malformed lines go straight to rejects.
    The speaker is the id's first field (LibriSpeech's `<speaker>-<chapter>-<utterance>`)."""
    by_key: dict[tuple[Path, str], list[Listed]] = defaultdict(list)
    for trans_file in sorted(folder.rglob(f"*{TRANSCRIPT_SUFFIX}")):
        for utt in _read_transcripts(trans_file, rejects):
            by_key[(trans_file.parent, utt.utt_id)].append(utt)
    for audio in sorted(folder.rglob(f"*{AUDIO_SUFFIX}")):
        key = (audio.parent, audio.name[: -len(AUDIO_SUFFIX)])
        if key not in by_key:
            by_key[key].append(
                Listed(key[1], audio, str(audio), speaker=id_speaker(key[1]), has_audio=False, listed_audio=False)
            )
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
    print(
        f"split '{split}': {len(ignored)} {IGNORED_AUDIO_SUFFIX} file(s) ignored (the manifest reads"
        f" {AUDIO_SUFFIX} audio only; convert them to FLAC to use them): {named}{more}",
        file=sys.stderr,
    )


def _read_transcripts(trans_file: Path, rejects: list[Reject]) -> list[Listed]:
    """Ids must carry the file's `<speaker>-<chapter>-` prefix; a line without one has lost its id."""
    prefix = trans_file.name[: -len(TRANSCRIPT_SUFFIX)] + "-"
    try:
        lines = trans_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        rejects.append(Reject("", str(trans_file), f"transcript file is not UTF-8 text ({error})"))
        return []
    utterances = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():  # a blank line carries no utterance (editors leave trailing ones)
            continue
        parts = _WHITESPACE.split(line.strip(), maxsplit=1)
        utt_id = parts[0]
        if not utt_id.startswith(prefix) or len(utt_id) == len(prefix):
            rejects.append(
                Reject(
                    "",
                    str(trans_file),
                    (
                        f"malformed transcript line {number} of {trans_file}: no utterance id"
                        f" '{prefix}<utt>' at its start: {line.strip()[:60]!r}"
                    ),
                )
            )
            continue
        utterances.append(
            Listed(
                utt_id=utt_id,
                audio_path=trans_file.parent / f"{utt_id}{AUDIO_SUFFIX}",
                location=f"{trans_file}:{number}",
                transcript=parts[1] if len(parts) > 1 else "",
                speaker=id_speaker(utt_id),
                has_audio=False,
                listed_audio=False,
            )
        )
    return utterances


def _mark_duplicates(utterances: list[Listed]) -> None:
    """Every copy is rejected: which one is right is not ours to guess."""
    by_id: dict[str, list[Listed]] = defaultdict(list)
    for utt in utterances:
        by_id[utt.utt_id].append(utt)
    for copies in by_id.values():
        if len(copies) < 2:
            continue
        for utt in copies:
            others = ", ".join(other.location for other in copies if other is not utt)
            utt.reasons.append(f"duplicate utterance id (also at {others})")


def _probe(path: Path) -> AudioProbe | AudioError:
    """The audio's probe, or why it cannot be used."""
    try:
        return probe_audio(path)
    except AudioError as error:
        return error


def _check_utterance(
    utt: Listed, probe: AudioProbe | AudioError | None, data_cfg: Mapping[str, Any], normalise: TextNormaliser
) -> list[Any] | None:
    """Append every reason the utterance is unusable to `utt.reasons`; return its manifest row."""
    transcript = _check_transcript(utt, normalise)
    if probe is None:
        utt.reasons.append(_no_audio(utt))
        return None
    if isinstance(probe, AudioError):
        utt.reasons.append(probe.reason)
        return None
    if probe.num_samples == 0:
        utt.reasons.append("zero-length audio (0 samples)")
    if probe.sample_rate != data_cfg["sample_rate"] and not data_cfg["resample"]:
        utt.reasons.append(
            f"sample rate {probe.sample_rate} Hz, expected {data_cfg['sample_rate']} Hz (config data.resample is false)"
        )
    offset, samples = _segment(utt, probe)
    duration = samples / probe.sample_rate
    if duration > data_cfg["max_duration_s"]:
        utt.reasons.append(
            f"duration {duration:.2f} s exceeds config data.max_duration_s = {data_cfg['max_duration_s']}"
        )
    return [utt.utt_id, str(utt.audio_path), duration, samples, probe.sample_rate, transcript, utt.speaker, offset]


def _no_audio(utt: Listed) -> str:
    if utt.listed_audio:
        return f"{utt.location}: audio file {utt.audio_path} does not exist"
    wav = utt.audio_path.with_suffix(IGNORED_AUDIO_SUFFIX)
    beside = f" ({wav.name} is there, but the manifest reads {AUDIO_SUFFIX} only)" if wav.is_file() else ""
    return f"transcript line {utt.location} has no audio file{beside}"


def _segment(utt: Listed, probe: AudioProbe) -> tuple[int, int]:
    """(first sample, samples) of the utterance in its recording, at the file's rate."""
    total = probe.num_samples
    if utt.start_s == 0.0 and utt.end_s is None:
        return 0, total
    offset = round(utt.start_s * probe.sample_rate)
    end = total if utt.end_s is None else round(utt.end_s * probe.sample_rate)
    recording_s = total / probe.sample_rate
    if utt.start_s < 0 or end <= offset:
        utt.reasons.append(f"{utt.location}: segment {utt.start_s}-{utt.end_s} s is empty or starts before 0")
    elif end > total + round(SEGMENT_END_SLACK_S * probe.sample_rate):
        utt.reasons.append(
            f"{utt.location}: segment ends at {utt.end_s} s, past the end of its recording"
            f" {utt.audio_path} ({recording_s:.3f} s)"
        )
    end = min(end, total)
    return offset, max(0, end - offset)


def _check_transcript(utt: Listed, normalise: TextNormaliser) -> str:
    """The normalised transcript ("" when there is none to use, with the reason in `utt.reasons`)."""
    if utt.transcript is None:
        where = f"{utt.audio_path.parent} (expected in a *{TRANSCRIPT_SUFFIX} file there)"
        utt.reasons.append(f"audio file has no transcript line in {where}")
        return ""
    transcript = normalise(utt.transcript)
    if not transcript:
        emptied = f" (normalised from {utt.transcript!r} by config data.text)" if utt.transcript.strip() else ""
        utt.reasons.append(f"empty transcript at {utt.location}{emptied}")
        return ""
    outside = normalise.outside(transcript)
    if outside:
        utt.reasons.append(
            f"characters outside config data.alphabet at {utt.location} (map them with"
            " data.text.replacements): " + " ".join(repr(char) for char in outside)
        )
    return transcript


def _failure_message(split: str, rejects: list[Reject]) -> str:
    lines = [f"  {r.location}: {r.reason}" for r in sorted(rejects, key=lambda r: (r.location, r.reason))]
    return (
        f"{len(rejects)} bad utterance(s) in split '{split}' (config data.on_bad_utterance is"
        f" '{ON_BAD_FAIL}'; '{ON_BAD_SKIP}' would drop them into the rejects table):\n" + "\n".join(lines)
    )
