"""The dev split: speaker-disjoint, seeded, complete; the search scores one part, the tables the other."""

from __future__ import annotations

import pandas as pd
import pytest

from omni.data.dev_split import split_by_speaker
from omni.study import Study
from tests.conftest import smoke_config


def dev_manifest(speakers: int = 10, per_speaker: int = 3) -> pd.DataFrame:
    ids = [f"utt{s}{u}" for s in range(speakers) for u in range(per_speaker)]
    return pd.DataFrame(
        {
            "utt_id": ids,
            "speaker": [f"spk{s}" for s in range(speakers) for _ in range(per_speaker)],
            "transcript": ["A"] * len(ids),
        }
    )


def test_split_is_speaker_disjoint_complete_and_seeded() -> None:
    manifest = dev_manifest()
    search, report = split_by_speaker(manifest, 0.5, seed=1)
    search_speakers, report_speakers = set(search["speaker"]), set(report["speaker"])
    assert not search_speakers & report_speakers
    assert len(search_speakers) == 5 and len(search) + len(report) == len(manifest)
    assert sorted([*search["utt_id"], *report["utt_id"]]) == sorted(manifest["utt_id"])
    again, _ = split_by_speaker(manifest, 0.5, seed=1)
    assert again.equals(search)
    others = {frozenset(split_by_speaker(manifest, 0.5, seed)[0]["speaker"]) for seed in range(2, 8)}
    assert len(others) > 1, "another seed holds out other speakers"


def test_each_part_keeps_a_speaker_and_one_speaker_is_an_error() -> None:
    search, report = split_by_speaker(dev_manifest(speakers=2), 0.99, seed=0)
    assert len(search) and len(report)
    with pytest.raises(ValueError, match="speaker"):
        split_by_speaker(dev_manifest(speakers=1), 0.5, seed=0)


def test_a_manifest_without_speakers_is_split_by_utterance() -> None:
    manifest = dev_manifest().assign(speaker=lambda frame: ["", *frame["speaker"][1:]])
    search, report = split_by_speaker(manifest, 0.5, seed=1)
    assert len(search) == 15 and len(report) == 15, "half the 30 utterances, not half the speakers"
    assert set(search["speaker"]) & set(report["speaker"]), "a speaker's utterances may fall on both sides"


def test_evaluations_of_dev_read_the_reported_part(tmp_path) -> None:
    study = Study.from_config(smoke_config(tmp_path))
    assert study.eval_manifest("dev").endswith("dev-report.tsv")
    assert study.eval_manifest("test-other").endswith("test-other.tsv")
