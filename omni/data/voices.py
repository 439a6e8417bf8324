"""Which voice speaks each speaker's utterances: the independent unit of a test set.

The synthetic corpus's speakers are voice variants with their own rate and pitch, and a split may
have more speaker folders than voices (test-other: 96 speakers of 6 voices), so two of its "speakers"
can be one voice: the resampling unit that is truly independent is the voice. The corpus says who
speaks in its SPEAKERS.TXT (LibriSpeech's, and the synthetic corpus's, which adds a VOICE column);
a corpus without voices (real speech) has one voice per speaker, and the table is then empty.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import pandas as pd

SPEAKERS_FILE = "SPEAKERS.TXT"
VOICE_COLUMNS = ["speaker", "voice"]
_ID, _VOICE = "ID", "VOICE"


def corpus_voices(root: str | os.PathLike) -> pd.DataFrame:
    """speaker -> voice from `<root>/SPEAKERS.TXT` when it has a VOICE column, else no rows."""
    path = Path(root) / SPEAKERS_FILE
    if not path.is_file():
        return pd.DataFrame(columns=VOICE_COLUMNS)
    header: list[str] = []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = [field.strip() for field in line.lstrip(";").split("|")]
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


def read_voices(path: str | os.PathLike) -> dict[str, str]:
    """The speaker -> voice table a `voices` job wrote (speakers it does not name are their own voice)."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if list(table.columns) != VOICE_COLUMNS:
        raise ValueError(f"voices table {path} has columns {list(table.columns)}, expected {VOICE_COLUMNS}")
    return dict(zip(table["speaker"], table["voice"]))


def voice_of(speaker: str, voices: Mapping[str, str]) -> str:
    return voices.get(speaker, speaker)
