"""The embedded synthetic corpus: text, espeak binding, reproducible LibriSpeech-layout build, corpus info."""

from __future__ import annotations

import hashlib
import json
import re
import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile

from omni import job_params
from omni.config import load_config
from omni.data import espeak, synth_text
from omni.data.corpus import CorpusError, prepare_corpus
from omni.data.synth_corpus import SPLITS, build_synth_corpus, plan_corpus
from tests.conftest import LIBRISPEECH_SAMPLE, REPO, layered_config
from tests.faults import FaultRecorder

CONFIG = REPO / "config.yaml"
SAMPLE_ROOT = LIBRISPEECH_SAMPLE
TINY = {"synth": {"splits": {split: 6 for split in SPLITS}, "speakers_per_split": 2}}
UTT_NAME = re.compile(r"^(\d+)-(\d+)-(\d{4})\.flac$")


def tiny_config(**overrides: Any) -> dict[str, Any]:
    return layered_config(TINY, overrides)


def tiny_spec(**overrides: Any) -> dict[str, Any]:
    """The build_corpus rule's section of the tiny config (what the synthetic corpus depends on)."""
    return job_params.corpus(tiny_config(**overrides))


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same tiny corpus built with 1 and with 2 workers (the second through prepare_corpus)."""
    config = tiny_config()
    one = tmp_path_factory.mktemp("one") / "synth"
    stats = build_synth_corpus(job_params.corpus(config), one, workers=1)
    results = tmp_path_factory.mktemp("results")
    info = prepare_corpus(job_params.corpus(config), results / "corpus" / "synth", workers=2)
    return {"config": config, "one": one, "stats": stats, "info": info, "two": Path(info["root"])}


# ---------------------------------------------------------------- text


def test_text_is_deterministic_distinct_and_in_alphabet() -> None:
    config = load_config(CONFIG)
    synth = config["synth"]
    args = (synth["splits"], synth["min_words"], synth["max_words"], config["data"]["alphabet"])
    first = synth_text.generate_splits(config["seed"], *args)
    assert first == synth_text.generate_splits(config["seed"], *args)
    assert first != synth_text.generate_splits(config["seed"] + 1, *args)
    allowed = set(config["data"]["alphabet"])
    every = [sentence for split in SPLITS for sentence in first[split]]
    assert len(synth_text.vocabulary(every)) >= 300
    assert len(synth_text.vocabulary(first["train"])) >= 300
    for sentence in every:
        assert set(sentence) <= allowed and sentence == sentence.upper()
        assert synth["min_words"] <= len(sentence.split()) <= synth["max_words"]
    assert len(set(every)) == len(every), "sentences repeat within or across splits"


def test_text_respects_a_narrow_alphabet_and_word_limits() -> None:
    sentences = synth_text.generate_splits(3, {"train": 50}, 4, 5, "ABCDEFGHIJKLMNOPQRSTUVWXYZ ")["train"]
    assert all("'" not in s and 4 <= len(s.split()) <= 5 for s in sentences)
    with pytest.raises(ValueError, match="synth.min_words"):
        synth_text.generate_splits(3, {"train": 1}, 6, 5, "ABCDEFGHIJKLMNOPQRSTUVWXYZ ")


def test_numbers_and_spoken_forms() -> None:
    assert synth_text.number_words(4271) == "four thousand two hundred seventy one"
    assert synth_text.ordinal_words(23) == "twenty third"
    assert synth_text.ordinal_words(30) == "thirtieth"
    assert synth_text.spoken_form("WAKE ME AT SEVEN A M") == "wake me at seven a.m."


# ---------------------------------------------------------------- espeak


def test_espeak_speaks_non_silent_audio_reproducibly() -> None:
    samples, rate = espeak.synthesize("call mom", "en-us+f3", 170, 50)
    assert rate == 22050 and samples.dtype == np.int16
    assert 0.3 < samples.size / rate < 3.0
    assert np.abs(samples.astype(np.float64)).mean() > 100
    espeak.synthesize("turn off the kitchen lights", "en+m3", 300, 10)  # must not colour the next call
    again, _ = espeak.synthesize("call mom", "en-us+f3", 170, 50)
    assert np.array_equal(samples, again)
    faster, _ = espeak.synthesize("call mom", "en-us+f3", 300, 50)
    assert faster.size < samples.size


def test_default_voices_exist_and_bad_names_name_the_config_key(tmp_path: Path) -> None:
    config = load_config(CONFIG)
    assert {"en-us", "en"} <= espeak.base_names()
    assert len(config["synth"]["train_voices"]) >= 10
    assert not set(config["synth"]["train_voices"]) & set(config["synth"]["other_voices"])
    espeak.check_voices(config["synth"]["train_voices"], "synth.train_voices")
    espeak.check_voices(config["synth"]["other_voices"], "synth.other_voices")
    with pytest.raises(espeak.EspeakError, match=r"synth\.other_voices.*en-us\+nosuchvariant"):
        build_synth_corpus(tiny_spec(synth={"other_voices": ["en-us+nosuchvariant"]}), tmp_path / "c", 1)
    with pytest.raises(espeak.EspeakError, match=r"synth\.train_voices.*xx-klingon"):
        build_synth_corpus(tiny_spec(synth={"train_voices": ["en-us", "xx-klingon"]}), tmp_path / "c", 1)
    assert not (tmp_path / "c").exists()


def test_rate_outside_espeak_limits_names_the_config_key() -> None:
    with pytest.raises(ValueError, match=r"synth\.other_rate_wpm"):
        plan_corpus(tiny_spec(synth={"other_rate_wpm": [40, 500]}))


# ---------------------------------------------------------------- corpus build


def test_build_is_byte_identical_for_any_worker_count(built: dict[str, Any]) -> None:
    one, two = tree_digest(built["one"]), tree_digest(built["two"])
    assert len(one) > 4 * 6 and one == two


def test_tree_has_librispeech_layout(built: dict[str, Any]) -> None:
    root, config = built["one"], built["config"]
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(SPLITS)
    speakers_seen: set[str] = set()
    for split in SPLITS:
        speakers = sorted(p.name for p in (root / split).iterdir())
        assert len(speakers) == 2 and not speakers_seen & set(speakers)
        speakers_seen |= set(speakers)
        flacs = sorted((root / split).glob("*/*/*.flac"))
        assert len(flacs) == 6
        lines = {}
        for trans in (root / split).glob("*/*/*.trans.txt"):
            speaker, chapter = trans.parent.parent.name, trans.parent.name
            assert trans.name == f"{speaker}-{chapter}.trans.txt"
            for line in trans.read_text().splitlines():
                utt_id, text = line.split(" ", 1)
                assert utt_id.startswith(f"{speaker}-{chapter}-")
                assert set(text) <= set(config["data"]["alphabet"]) and text == text.strip()
                lines[utt_id] = text
        assert sorted(lines) == [f.stem for f in flacs]
        for flac in flacs:
            assert UTT_NAME.match(flac.name)
            info = soundfile.info(flac)
            assert (info.samplerate, info.channels, info.subtype) == (config["data"]["sample_rate"], 1, "PCM_16")
            audio, _ = soundfile.read(flac, dtype="float32")
            assert np.abs(audio).max() > 0.05 and 0.5 < audio.size / info.samplerate < 10.0


def test_test_other_is_mismatched(built: dict[str, Any]) -> None:
    config = built["config"]
    synth = config["synth"]
    plan = plan_corpus(job_params.corpus(config))
    low, high = synth["rate_wpm"]
    for utterance in plan:
        if utterance.speaker.split == "test-other":
            assert utterance.voicing.voice in synth["other_voices"]
            assert not low <= utterance.voicing.rate_wpm <= high
            assert utterance.noise is not None
        else:
            assert utterance.voicing.voice in synth["train_voices"]
            assert low <= utterance.voicing.rate_wpm <= high and utterance.noise is None
    rows = [
        [cell.strip() for cell in line.split("|")]
        for line in (built["one"] / "SPEAKERS.TXT").read_text().splitlines()
        if not line.startswith(";")
    ]
    voices = {subset: {row[3] for row in rows if row[1] == subset} for subset in SPLITS}
    assert voices["test-other"] <= set(synth["other_voices"])
    assert not voices["test-other"] & (voices["train"] | voices["dev"] | voices["test-clean"])


def test_stats_and_info(built: dict[str, Any]) -> None:
    stats, info = built["stats"], built["info"]
    plan = plan_corpus(job_params.corpus(built["config"]))
    assert stats["utterances"] == {split: 6 for split in SPLITS}
    assert all(0 < stats["hours"][split] < 6 * 10 / 3600 for split in SPLITS)
    assert stats["voices"] == len({u.voicing.voice for u in plan})
    assert stats["vocabulary_size"] == len(synth_text.vocabulary([u.transcript for u in plan]))
    assert info["corpus"] == "synth" and info["subsets"] == {split: [split] for split in SPLITS}
    assert info["root"].endswith("corpus/synth") and info["utterances"] == stats["utterances"]


@pytest.mark.fault("kills")
def test_rebuild_replaces_tree_and_clears_stale_partial(tmp_path: Path, fault: FaultRecorder) -> None:
    config = tiny_spec(synth={"splits": {split: 1 for split in SPLITS}, "speakers_per_split": 1})
    out = tmp_path / "synth"
    (tmp_path / "synth.partial" / "junk").mkdir(parents=True)  # as a killed build leaves it
    build_synth_corpus(config, out, workers=1)
    first = tree_digest(out)
    (out / "stale.txt").write_text("from an older build")
    build_synth_corpus(config, out, workers=1)
    assert tree_digest(out) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth"]
    fault.survived(
        "the partial tree a killed corpus build leaves is cleared; the rebuild gives the same tree, "
        "byte for byte, and replaces a stale one"
    )


# ---------------------------------------------------------------- librispeech branch and the rule script


def librispeech_config(tmp_path: Path, root: Path, subsets: dict[str, list[str]]) -> dict[str, Any]:
    return layered_config(
        {"corpus": "librispeech", "results_dir": str(tmp_path), "librispeech": {"root": str(root), "subsets": subsets}},
    )


@pytest.mark.skipif(not (SAMPLE_ROOT / "test-other").is_dir(), reason="no LibriSpeech sample")
def test_librispeech_info_and_rule_script(tmp_path: Path) -> None:
    subsets = {split: ["test-other"] for split in SPLITS}
    config = librispeech_config(tmp_path, SAMPLE_ROOT, subsets)
    info_path, log_path = tmp_path / "corpus" / "librispeech.json", tmp_path / "logs" / "build_corpus.log"
    smk = SimpleNamespace(
        params=SimpleNamespace(corpus=job_params.corpus(config), synth_tree=str(tmp_path / "unused")),
        output=SimpleNamespace(info=str(info_path)),
        log=[str(log_path)],
        threads=2,
    )
    runpy.run_path(str(REPO / "workflow_scripts" / "build_corpus.py"), init_globals={"snakemake": smk})
    info = json.loads(info_path.read_text())
    assert info == {"corpus": "librispeech", "root": str(SAMPLE_ROOT), "subsets": subsets}
    assert "corpus ready" in log_path.read_text()


@pytest.mark.skipif(not (SAMPLE_ROOT / "test-other").is_dir(), reason="no LibriSpeech sample")
def test_librispeech_missing_folders_name_the_config_key(tmp_path: Path) -> None:
    subsets = {split: ["test-other"] for split in SPLITS} | {"train": ["train-clean-100"]}
    with pytest.raises(CorpusError, match=r"librispeech\.subsets\.train.*train-clean-100"):
        prepare_corpus(job_params.corpus(librispeech_config(tmp_path, SAMPLE_ROOT, subsets)), tmp_path, workers=1)
    with pytest.raises(CorpusError, match=r"librispeech\.root.*nowhere"):
        prepare_corpus(
            job_params.corpus(librispeech_config(tmp_path, tmp_path / "nowhere", subsets)), tmp_path, workers=1
        )
