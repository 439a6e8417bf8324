"""The dev set, split once by speaker into a part the search may score and a part the tables report.

A layer-wise search that picks its models on the very utterances the dev column reports would
report its own selection bias. The split is by speaker (the manifest's `speaker` column), because
utterances of one speaker are not independent, and seeded, so every run of a configuration holds
out the same speakers. A corpus whose manifest names no speaker for some utterance is split by
utterance, and says so: its two parts may then share a talker.
"""

from __future__ import annotations

import math
import random

import pandas as pd


def split_units(manifest: pd.DataFrame) -> tuple[pd.Series, str]:
    """What the split draws for each utterance, and the unit's name: its speaker, or the utterance itself
    where the manifest names no speaker for some."""
    if (manifest["speaker"] == "").any():
        return manifest["utt_id"], "utterance"
    return manifest["speaker"], "speaker"


def split_by_speaker(manifest: pd.DataFrame, search_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(search part, report part): `search_fraction` of the speakers (or utterances, see split_units),
    drawn with `seed`, and the rest. Both keep the manifest's row order; each part has at least one unit."""
    units, name = split_units(manifest)
    distinct = sorted(set(units))
    if len(distinct) < 2:
        raise ValueError(f"the dev manifest has {len(distinct)} {name}(s); a {name}-disjoint split needs two")
    count = min(len(distinct) - 1, max(1, math.ceil(search_fraction * len(distinct))))
    chosen = set(random.Random(f"{seed}:dev-split").sample(distinct, count))
    in_search = units.isin(chosen)
    return manifest[in_search].reset_index(drop=True), manifest[~in_search].reset_index(drop=True)
