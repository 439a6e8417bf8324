"""Who speaks each utterance, and in which voice: the independent unit of a test set.

The manifests say who speaks (their `speaker` column: LibriSpeech's speaker folder, a user's
listing's speaker, or nothing). The synthetic corpus's speakers are voice variants with their own
rate and pitch, and a split may have more speaker folders than voices (test-other: 96 speakers of 6
voices), so two of its "speakers" can be one voice: the resampling unit that is truly independent is
the voice. The corpus says which voice in its SPEAKERS.TXT (the synthetic corpus's adds a VOICE
column); real speech has one voice per speaker. An utterance whose manifest names no speaker is its
own unit, and the tables say they resample utterances because the corpus names no speakers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

SPEAKERS_FILE = "SPEAKERS.TXT"
VOICE_COLUMNS = ["speaker", "voice"]
UTTERANCE_COLUMNS = ["utt_id", "speaker", "voice"]
_ID, _VOICE = "ID", "VOICE"


def corpus_voices(root: str | os.PathLike) -> pd.DataFrame:
    """speaker -> voice from `<root>/SPEAKERS.TXT` when it has a VOICE column, else no rows."""
    path = Path(root) / SPEAKERS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=VOICE_COLUMNS)
    header: list[str] = []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = [part.strip() for part in line.lstrip(";").split("|")]
        if line.startswith(";"):
            if fields and fields[0] == _ID:
                header = fields
            continue
        if _VOICE not in header or not line.strip():
            continue
        if len(fields) != len(header):
            raise ValueError(f"{path}:{number}: {len(fields)} fields, the header names {len(header)}")
        rows.append((fields[header.index(_ID)], fields[header.index(_VOICE)]))
    return pd.DataFrame(rows, columns=VOICE_COLUMNS)


def utterance_voices(manifests: Iterable[pd.DataFrame], root: str | os.PathLike) -> pd.DataFrame:
    """utt_id, speaker, voice of every utterance of `manifests` (omni.data.manifest); the voice is the
    corpus's (`<root>/SPEAKERS.TXT`) or the speaker; both empty where no speaker is named."""
    corpus = dict(corpus_voices(root).itertuples(index=False))
    rows = pd.concat([manifest[["utt_id", "speaker"]] for manifest in manifests]).drop_duplicates("utt_id")
    voices = [corpus.get(speaker, speaker) for speaker in rows["speaker"]]
    return pd.DataFrame(
        {"utt_id": rows["utt_id"], "speaker": rows["speaker"], "voice": voices}, columns=UTTERANCE_COLUMNS
    ).sort_values("utt_id", ignore_index=True)


def id_speaker(utt_id: str) -> str:
    """The speaker a LibriSpeech id names: its first field (`<speaker>-<chapter>-<utterance>`)."""
    return utt_id.split("-", 1)[0]


@dataclass(frozen=True)
class Voices:
    """utterance -> speaker and voice (a `voices` job's table). An utterance it does not list is read
    as a LibriSpeech id (`<speaker>-<chapter>-<utterance>`); one listed without a speaker is its own."""

    speakers: Mapping[str, str] = field(default_factory=dict)
    voices: Mapping[str, str] = field(default_factory=dict)

    def speaker_of(self, utt_id: str) -> str:
        if utt_id not in self.speakers:
            return id_speaker(utt_id)
        return self.speakers[utt_id] or utt_id

    def voice_of(self, utt_id: str) -> str:
        return self.voices.get(utt_id) or self.speaker_of(utt_id)

    def names_speakers(self, utt_ids: Iterable[str]) -> bool:
        """Whether every one of `utt_ids` has a speaker (else a resample draws utterances)."""
        return all(self.speakers.get(utt_id, True) for utt_id in utt_ids)


def read_voices(path: str | os.PathLike) -> Voices:
    """The table a `voices` job wrote."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if list(table.columns) != UTTERANCE_COLUMNS:
        raise ValueError(f"voices table {path} has columns {list(table.columns)}, expected {UTTERANCE_COLUMNS}")
    return Voices(dict(zip(table["utt_id"], table["speaker"])), dict(zip(table["utt_id"], table["voice"])))
