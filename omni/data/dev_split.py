"""The dev set, split once by speaker into a part the search may score and a part the tables report.

A layer-wise search that picks its models on the very utterances the dev column reports would
report its own selection bias. The split is by speaker (LibriSpeech ids are
`<speaker>-<chapter>-<utterance>`), because utterances of one speaker are not independent, and
seeded, so every run of a configuration holds out the same speakers.
"""
from __future__ import annotations

import math
import random

import pandas as pd


def speaker_of(utt_id: str) -> str:
    return utt_id.split("-", 1)[0]


def split_by_speaker(manifest: pd.DataFrame, search_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(search part, report part): `search_fraction` of the speakers, drawn with `seed`, and the rest.
    Both keep the manifest's row order; each part has at least one speaker."""
    speakers = sorted(set(manifest["utt_id"].map(speaker_of)))
    if len(speakers) < 2:
        raise ValueError(f"the dev manifest has {len(speakers)} speaker(s); a speaker-disjoint split needs two")
    count = min(len(speakers) - 1, max(1, math.ceil(search_fraction * len(speakers))))
    chosen = set(random.Random(f"{seed}:dev-split").sample(speakers, count))
    in_search = manifest["utt_id"].map(speaker_of).isin(chosen)
    return manifest[in_search].reset_index(drop=True), manifest[~in_search].reset_index(drop=True)
