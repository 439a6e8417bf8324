"""Manifest validation: one small broken LibriSpeech-layout tree per bad-input case; manifests of a
moved results folder (or a moved LibriSpeech tree) read their audio from the new place. The bad trees
and the moves are fault probes (tests/faults.py)."""

from __future__ import annotations

import copy
import json
import runpy
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
from snakemake.utils import update_config

from omni import job_params
from omni.data.batches import UtteranceSet
from omni.data.corpus import CorpusError
from omni.data.manifest import (
    MANIFEST_COLUMNS,
    REJECT_COLUMNS,
    BadCorpusError,
    ManifestError,
    audio_spans,
    build_manifest,
    read_manifest,
)
from omni.data.synth_corpus import SPLITS
from omni.data.voices import read_voices
from omni.study import Study
from tests.conftest import LIBRISPEECH_SAMPLE, REPO, layered_config, manifest_section
from tests.faults import FaultRecorder
from tests.test_synth import tiny_config

RATE = 16000
SECONDS = 0.5
MAX_SECONDS = 2.0
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ' "
SPLIT = "train"
SUBSET = "train-a"
SPEAKER, CHAPTER = "11", "22"
GOOD_TEXTS = ["HELLO WORLD", "IT'S A TEST"]
BROKEN_INDEX = len(GOOD_TEXTS)


def data_cfg(**overrides: object) -> dict:
    return manifest_section(
        **{
            "sample_rate": RATE,
            "resample": False,
            "max_duration_s": MAX_SECONDS,
            "alphabet": ALPHABET,
            "on_bad_utterance": "skip",
            **overrides,
        }
    )


def corpus_info(root: Path, subsets: list[str]) -> dict:
    return {"corpus": "librispeech", "root": str(root), "subsets": {SPLIT: subsets}}


def write_wave(path: Path, seconds: float = SECONDS, rate: int = RATE, channels: int = 1) -> None:
    """A quiet tone: deterministic and cheap to encode."""
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    soundfile.write(path, np.stack([tone] * channels, axis=1), rate, subtype="PCM_16")


@dataclass
class Chapter:
    """One `<subset>/<speaker>/<chapter>` folder of a test corpus."""

    folder: Path
    prefix: str

    def utt(self, index: int) -> str:
        return f"{self.prefix}-{index:04d}"

    @property
    def good(self) -> list[str]:
        return [self.utt(i) for i in range(len(GOOD_TEXTS))]

    @property
    def broken(self) -> str:
        return self.utt(BROKEN_INDEX)

    @property
    def trans(self) -> Path:
        return self.folder / f"{self.prefix}.trans.txt"

    def audio(self, utt_id: str) -> Path:
        return self.folder / f"{utt_id}.flac"

    def add_line(self, line: str) -> None:
        with open(self.trans, "a") as handle:
            handle.write(line + "\n")


def write_good_chapter(root: Path, subset: str = SUBSET, speaker: str = SPEAKER) -> Chapter:
    """Two valid utterances; a case adds its breakage as utterance BROKEN_INDEX."""
    chapter = Chapter(root / subset / speaker / CHAPTER, f"{speaker}-{CHAPTER}")
    chapter.folder.mkdir(parents=True)
    for utt_id, text in zip(chapter.good, GOOD_TEXTS):
        write_wave(chapter.audio(utt_id))
        chapter.add_line(f"{utt_id} {text}")
    return chapter


def break_corrupt(chapter: Chapter) -> None:
    """Truncated: the header still reads fine; only the missing last sample gives it away."""
    audio = chapter.audio(chapter.broken)
    write_wave(audio)
    audio.write_bytes(audio.read_bytes()[: audio.stat().st_size // 2])
    assert soundfile.info(audio).frames == SECONDS * RATE
    chapter.add_line(f"{chapter.broken} TRUNCATED FILE")


def break_garbage(chapter: Chapter) -> None:
    chapter.audio(chapter.broken).write_bytes(b"this is not audio" * 8)
    chapter.add_line(f"{chapter.broken} GARBAGE BYTES")


def break_zero_length(chapter: Chapter) -> None:
    """What soundfile itself leaves when asked to write an empty FLAC."""
    soundfile.write(chapter.audio(chapter.broken), np.zeros(0, dtype=np.float32), RATE)
    chapter.add_line(f"{chapter.broken} NOTHING HERE")


def break_missing_line(chapter: Chapter) -> None:
    write_wave(chapter.audio(chapter.broken))


def break_missing_audio(chapter: Chapter) -> None:
    chapter.add_line(f"{chapter.broken} WHERE IS MY AUDIO")


def break_empty_transcript(chapter: Chapter) -> None:
    write_wave(chapter.audio(chapter.broken))
    chapter.add_line(chapter.broken)


def break_characters(chapter: Chapter) -> None:
    write_wave(chapter.audio(chapter.broken))
    chapter.add_line(f"{chapter.broken} HELLO WÖRLD 42")


def break_rate(chapter: Chapter) -> None:
    write_wave(chapter.audio(chapter.broken), rate=8000)
    chapter.add_line(f"{chapter.broken} LOW RATE")


def break_stereo(chapter: Chapter) -> None:
    write_wave(chapter.audio(chapter.broken), channels=2)
    chapter.add_line(f"{chapter.broken} TWO CHANNELS")


def break_too_long(chapter: Chapter) -> None:
    write_wave(chapter.audio(chapter.broken), seconds=MAX_SECONDS + 0.5)
    chapter.add_line(f"{chapter.broken} FAR TOO LONG")


CASES: dict[str, tuple[Callable[[Chapter], None], list[str]]] = {
    "corrupt": (break_corrupt, ["truncated or corrupt audio", "header declares"]),
    "garbage": (break_garbage, ["unreadable, truncated or corrupt audio"]),
    "zero_length": (break_zero_length, ["zero-length audio"]),
    "missing_line": (break_missing_line, ["no transcript line"]),
    "missing_audio": (break_missing_audio, ["has no audio file", f"{SPEAKER}-{CHAPTER}.trans.txt:3"]),
    "empty_transcript": (break_empty_transcript, ["empty transcript"]),
    "characters": (break_characters, ["data.alphabet", "'Ö'", "'4'", "'2'"]),
    "rate": (break_rate, ["sample rate 8000 Hz", "data.resample"]),
    "too_long": (break_too_long, ["2.50 s exceeds", "data.max_duration_s"]),
}


def good_dropped(kept: pd.DataFrame, good: list[str]) -> int:
    return len(set(good) - set(kept["utt_id"]))


@pytest.mark.fault("bad corpora")
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_bad_utterance_is_rejected_with_its_reason(tmp_path: Path, case: str, fault: FaultRecorder) -> None:
    breaker, expected = CASES[case]
    chapter = write_good_chapter(tmp_path)
    breaker(chapter)
    kept, rejects = build_manifest(corpus_info(tmp_path, [SUBSET]), SPLIT, data_cfg())
    fault.data_lost(good_dropped(kept, chapter.good), "good utterances dropped")
    assert list(kept["utt_id"]) == chapter.good
    assert list(rejects.columns) == REJECT_COLUMNS
    assert list(rejects["utt_id"]) == [chapter.broken]
    fault.named("\t".join(rejects.iloc[0]), str(chapter.audio(chapter.broken)))
    for fragment in expected:
        assert fragment in rejects["reason"][0]
    fault.survived("skip mode: the bad utterance rejected with its file and reason, the good ones kept")


def test_other_sample_rate_is_kept_when_resampling(tmp_path: Path) -> None:
    chapter = write_good_chapter(tmp_path)
    break_rate(chapter)
    kept, rejects = build_manifest(corpus_info(tmp_path, [SUBSET]), SPLIT, data_cfg(resample=True))
    assert rejects.empty
    assert kept.set_index("utt_id").loc[chapter.broken, "sample_rate"] == 8000


@pytest.mark.fault("bad corpora")
def test_malformed_line_names_file_and_line(tmp_path: Path, fault: FaultRecorder) -> None:
    chapter = write_good_chapter(tmp_path)
    chapter.add_line("HELLO WORLD WITHOUT AN ID")
    kept, rejects = build_manifest(corpus_info(tmp_path, [SUBSET]), SPLIT, data_cfg())
    fault.data_lost(good_dropped(kept, chapter.good), "good utterances dropped")
    assert list(kept["utt_id"]) == chapter.good
    (reason,) = rejects["reason"]
    fault.named(reason, f"line 3 of {chapter.trans}")
    fault.survived("the malformed line rejected by file and line, the good utterances kept")


@pytest.mark.fault("bad corpora")
def test_duplicate_ids_across_subsets_reject_every_copy(tmp_path: Path, fault: FaultRecorder) -> None:
    first = write_good_chapter(tmp_path, "train-a")
    second = write_good_chapter(tmp_path, "train-b")
    write_wave(second.audio(second.broken))
    second.add_line(f"{second.broken} UNIQUE")
    kept, rejects = build_manifest(corpus_info(tmp_path, ["train-a", "train-b"]), SPLIT, data_cfg())
    fault.data_lost(good_dropped(kept, [second.broken]), "unique utterances dropped")
    assert list(kept["utt_id"]) == [second.broken]
    assert sorted(rejects["utt_id"]) == sorted(first.good * 2)
    copy_in_a = rejects[rejects["location"] == str(first.audio(first.good[0]))]["reason"].iloc[0]
    fault.named(copy_in_a, f"{second.trans}:1")
    assert copy_in_a == f"duplicate utterance id (also at {second.trans}:1)"
    fault.survived("every copy of a duplicated id rejected, each naming the other's file:line; the unique one kept")


@pytest.mark.fault("bad corpora")
def test_fail_mode_lists_every_offender_in_one_message(tmp_path: Path, fault: FaultRecorder) -> None:
    broken_files, lines = [], []
    for index, case in enumerate(sorted(CASES)):
        chapter = write_good_chapter(tmp_path, SUBSET, speaker=str(100 + index))
        CASES[case][0](chapter)
        broken_files.append(chapter.audio(chapter.broken))
        if case == "missing_audio":
            lines.append(f"{chapter.trans}:3")
    with pytest.raises(BadCorpusError) as caught:
        build_manifest(corpus_info(tmp_path, [SUBSET]), SPLIT, data_cfg(on_bad_utterance="fail"))
    message = str(caught.value)
    assert message.startswith(f"{len(CASES)} bad utterance(s)")
    fault.named(message, *map(str, broken_files), *lines)  # every planted file, and file:line where no audio is
    for path in broken_files:
        assert str(path) in message
    for _, expected in CASES.values():
        assert expected[0] in message
    fault.survived(f"fail mode: one error listing all {len(CASES)} planted problems, each with its file and reason")


@pytest.mark.fault("bad corpora")
def test_transcript_file_that_is_not_utf8_is_named(tmp_path: Path, fault: FaultRecorder) -> None:
    chapter = write_good_chapter(tmp_path)
    chapter.trans.write_bytes(b"\xff\xfe not utf-8\n")
    with pytest.raises(BadCorpusError) as caught:
        build_manifest(corpus_info(tmp_path, [SUBSET]), SPLIT, data_cfg(on_bad_utterance="fail"))
    fault.named(str(caught.value), str(chapter.trans))
    assert f"{chapter.trans}: transcript file is not UTF-8 text" in str(caught.value)
    fault.survived("refused, naming the transcript file")


def test_split_with_nothing_usable_is_an_error_even_when_skipping(tmp_path: Path) -> None:
    chapter = write_good_chapter(tmp_path)
    chapter.trans.unlink()
    with pytest.raises(BadCorpusError, match=r"no usable utterances in .* \(2 rejected\)"):
        build_manifest(corpus_info(tmp_path, [SUBSET]), SPLIT, data_cfg())


@pytest.mark.fault("bad corpora")
def test_missing_subset_folder_is_named(tmp_path: Path, fault: FaultRecorder) -> None:
    write_good_chapter(tmp_path)
    with pytest.raises(BadCorpusError, match="train-missing") as caught:
        build_manifest(corpus_info(tmp_path, [SUBSET, "train-missing"]), SPLIT, data_cfg())
    fault.named(str(caught.value), "train-missing")
    fault.survived("refused, naming the missing subset folder")


def test_stereo_audio_is_kept_and_read_as_the_mean_of_its_channels(tmp_path: Path) -> None:
    chapter = write_good_chapter(tmp_path)
    left, right = np.full(RATE, 0.5, dtype=np.float32), np.full(RATE, -0.25, dtype=np.float32)
    soundfile.write(chapter.audio(chapter.broken), np.stack([left, right], axis=1), RATE, subtype="PCM_16")
    chapter.add_line(f"{chapter.broken} TWO CHANNELS")
    kept, rejects = build_manifest(corpus_info(tmp_path, [SUBSET]), SPLIT, data_cfg())
    assert rejects.empty and chapter.broken in set(kept["utt_id"])
    [stereo] = audio_spans(kept[kept["utt_id"] == chapter.broken])
    assert torch.equal(stereo.read(RATE, resample=False), torch.full((RATE,), 0.125))


def test_manifest_rule_skip_mode_writes_manifest_and_rejects(tmp_path: Path) -> None:
    chapter = write_good_chapter(tmp_path / "corpus")
    break_characters(chapter)
    out = run_manifest_rule(tmp_path, data_cfg())
    kept = read_manifest(out / "manifest.tsv")
    assert list(kept.columns) == MANIFEST_COLUMNS
    assert list(kept["utt_id"]) == chapter.good
    assert list(kept["transcript"]) == GOOD_TEXTS
    assert list(kept["duration_s"]) == [SECONDS] * len(GOOD_TEXTS)
    assert list(kept["num_samples"]) == [SECONDS * RATE] * len(GOOD_TEXTS)
    rejects = pd.read_csv(out / "rejects.tsv", sep="\t")
    assert list(rejects["utt_id"]) == [chapter.broken]


def test_manifest_rule_writes_header_only_rejects_for_a_clean_corpus(tmp_path: Path) -> None:
    write_good_chapter(tmp_path / "corpus")
    out = run_manifest_rule(tmp_path, data_cfg(on_bad_utterance="fail"))
    assert (out / "rejects.tsv").read_text() == "\t".join(REJECT_COLUMNS) + "\n"


@pytest.mark.fault("bad corpora")
def test_manifest_rule_fail_mode_writes_nothing(tmp_path: Path, fault: FaultRecorder) -> None:
    chapter = write_good_chapter(tmp_path / "corpus")
    break_rate(chapter)
    with pytest.raises(BadCorpusError, match="sample rate 8000 Hz") as caught:
        run_manifest_rule(tmp_path, data_cfg(on_bad_utterance="fail"))
    fault.named(str(caught.value), str(chapter.audio(chapter.broken)))
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["corpus.json", "manifest.log"]
    fault.survived("the rule's script failed naming the file, and wrote no manifest or rejects table")


@pytest.mark.fault("bad corpora")
def test_read_manifest_names_the_file_on_wrong_columns(tmp_path: Path, fault: FaultRecorder) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("utt_id\tpath\nA\tB\n")
    with pytest.raises(ManifestError, match=str(path)) as caught:
        read_manifest(path)
    fault.named(str(caught.value), str(path))
    fault.survived("a manifest of other columns refused, naming the file")


def test_read_manifest_keeps_na_words_as_text(tmp_path: Path) -> None:
    path = tmp_path / "m.tsv"
    row = ["A-1-1", "/x.flac", 1.0, RATE, RATE, "NA", "A", 0]
    pd.DataFrame([row], columns=MANIFEST_COLUMNS).to_csv(path, sep="\t", index=False)
    assert read_manifest(path)["transcript"][0] == "NA"


@pytest.mark.fault("bad corpora")
def test_wav_files_in_the_tree_are_named_not_dropped_without_a_word(
    tmp_path: Path, capsys, fault: FaultRecorder
) -> None:
    chapter = write_good_chapter(tmp_path)
    copy = chapter.folder / f"{chapter.good[0]}.wav"  # a WAV copy beside its FLAC
    only_wav = chapter.folder / f"{chapter.broken}.wav"  # an utterance converted to WAV only
    strays = [chapter.folder / f"{chapter.utt(10 + index)}.wav" for index in range(5)]
    for path in [copy, only_wav, *strays]:
        write_wave(path)
    chapter.add_line(f"{chapter.broken} ONLY A WAV")
    kept, rejects = build_manifest(corpus_info(tmp_path, [SUBSET]), SPLIT, data_cfg())
    fault.data_lost(good_dropped(kept, chapter.good), "good utterances dropped")
    assert list(kept["utt_id"]) == chapter.good
    (reason,) = rejects["reason"]
    fault.named(reason, only_wav.name)
    assert reason.endswith(f"has no audio file ({only_wav.name} is there, but the manifest reads .flac only)")
    log = capsys.readouterr().err
    assert f"split '{SPLIT}': 7 .wav file(s) ignored" in log and "convert them to FLAC" in log
    named = sorted(map(str, [copy, only_wav, *strays]))
    fault.named(log, *named[:5])
    assert ", ".join(named[:5]) + " and 2 more" in log
    fault.survived("the .wav files named in the log (5 and a count), the utterance with only a .wav rejected naming it")


def test_a_table_without_a_corpus_line_reads_its_paths_relative_to_itself(tmp_path: Path) -> None:
    path = tmp_path / "lists" / "m.tsv"
    path.parent.mkdir()
    pd.DataFrame(
        [
            ["A-1-1", "audio/x.flac", 1.0, RATE, RATE, "A", "A", 0],
            ["A-1-2", "/abs/y.flac", 1.0, RATE, RATE, "B", "A", 0],
        ],
        columns=MANIFEST_COLUMNS,
    ).to_csv(path, sep="\t", index=False)
    assert list(read_manifest(path)["audio_path"]) == [str(tmp_path / "lists" / "audio" / "x.flac"), "/abs/y.flac"]


def build_data_stage(config: dict, splits: list[str]) -> Path:
    """The corpus and manifest jobs of `config`'s study (and split_dev with dev), through their rule
    scripts, into its results folder; the corpus record's path."""
    results = Path(config["results_dir"])
    study = Study.from_config(config)
    record = results / "corpus" / f"{config['corpus']}.json"
    run_rule(
        "build_corpus.py",
        results / "logs" / "build_corpus.log",
        threads=2,
        output={"info": record},
        params={"corpus": job_params.corpus(config), "synth_tree": results / "corpus" / "synth"},
    )
    for split in splits:
        run_rule(
            "build_manifest.py",
            results / "logs" / f"manifest-{split}.log",
            input={"corpus": record},
            output={"manifest": study.manifest(split), "rejects": results / "data" / "rejects" / f"{split}.tsv"},
            wildcards={"split": split},
            params={"data": job_params.manifest(config)},
        )
    if "dev" in splits:
        run_rule(
            "split_dev.py",
            results / "logs" / "split_dev.log",
            input={"manifest": study.manifest("dev")},
            output={"search": study.manifest("dev-search"), "report": study.manifest("dev-report")},
            params={"dev_split": job_params.dev_split(config)},
        )
    return record


def assert_batches_read_from(manifest: Path, place: Path, sample_rate: int) -> None:
    """A training job's view of `manifest` (omni.jobs.training): every audio file under `place`, and a
    batch of all of them decoded to the lengths the manifest declares."""
    table = read_manifest(manifest)
    assert all(Path(audio).is_relative_to(place) for audio in table["audio_path"]), table["audio_path"][0]
    utterances = UtteranceSet(table, None, sample_rate, cache_audio=False)
    batch = utterances.collate(range(len(utterances)))
    assert batch.wave_lengths.tolist() == utterances.num_samples
    assert bool((batch.waveforms.abs().amax(dim=1) > 0).all())


def missing_audio(manifest: Path) -> int:
    """Rows of a manifest whose audio file is not there: what a move would lose."""
    return sum(not Path(audio).is_file() for audio in read_manifest(manifest)["audio_path"])


@pytest.mark.fault("relocated results")
def test_a_moved_synthetic_study_reads_its_audio_from_the_new_place(tmp_path: Path, fault: FaultRecorder) -> None:
    config = tiny_config(results_dir=str(tmp_path / "results"))
    build_data_stage(config, ["train", "dev"])
    manifests = Path(config["results_dir"]) / "data" / "manifests"
    assert (manifests / "train.tsv").read_text().startswith("# corpus: ../../corpus/synth.json\nutt_id\taudio_path")
    moved = tmp_path / "elsewhere" / "study-copy"
    shutil.move(config["results_dir"], moved)
    for name in ("train", "dev-search", "dev-report"):
        fault.data_lost(missing_audio(moved / "data" / "manifests" / f"{name}.tsv"), f"{name} utterances unreadable")
        assert_batches_read_from(
            moved / "data" / "manifests" / f"{name}.tsv", moved / "corpus" / "synth", config["data"]["sample_rate"]
        )
    voices = moved / "data" / "voices.tsv"
    manifests = [str(moved / "data" / "manifests" / f"{name}.tsv") for name in ("train", "dev")]
    run_rule(
        "voices.py",
        moved / "logs" / "voices.log",
        input={"corpus": moved / "corpus" / "synth.json", "manifests": manifests},
        output={"voices": voices},
    )
    table = read_voices(voices)
    assert len(table.speakers) == sum(len(read_manifest(path)) for path in manifests)
    assert set(table.voices.values()) <= set(config["synth"]["train_voices"] + config["synth"]["other_voices"])
    lonely = tmp_path / "lonely" / "data" / "manifests" / "train.tsv"  # copied without its corpus record
    lonely.parent.mkdir(parents=True)
    shutil.copy(moved / "data" / "manifests" / "train.tsv", lonely)
    with pytest.raises(
        CorpusError,
        match=f"corpus record {tmp_path / 'lonely' / 'corpus' / 'synth.json'} cannot"
        " be read .*copy the results folder whole",
    ) as caught:
        read_manifest(lonely)
    fault.named(str(caught.value), str(tmp_path / "lonely" / "corpus" / "synth.json"))
    fault.survived(
        "a moved results folder's manifests read every utterance from the new place; a manifest "
        "copied without its corpus record is refused, naming the record it looked for"
    )


@pytest.mark.fault("relocated results")
@pytest.mark.skipif(not (LIBRISPEECH_SAMPLE / "test-other").is_dir(), reason="no LibriSpeech sample")
def test_a_moved_librispeech_study_follows_config_librispeech_root(tmp_path: Path, fault: FaultRecorder) -> None:
    """The results folder moves (the tree stays); then the tree moves, and config librispeech.root
    pointed at it (the corpus job rerun) is all the manifests need: they are not rebuilt."""
    lab = tmp_path / "lab" / "LibriSpeech"
    shutil.copytree(LIBRISPEECH_SAMPLE, lab)
    subsets = {split: ["test-other"] for split in SPLITS}
    config = layered_config(
        {
            "corpus": "librispeech",
            "results_dir": str(tmp_path / "results"),
            "librispeech": {"root": str(lab), "subsets": subsets},
        },
    )
    build_data_stage(config, ["test-other"])
    moved = tmp_path / "moved" / "results"
    shutil.move(config["results_dir"], moved)
    manifest = moved / "data" / "manifests" / "test-other.tsv"
    fault.data_lost(missing_audio(manifest), "utterances unreadable after the results folder moved")
    assert_batches_read_from(manifest, lab, config["data"]["sample_rate"])
    mounted = tmp_path / "mounted" / "LibriSpeech"
    shutil.move(lab, mounted)
    elsewhere = copy.deepcopy(config)
    update_config(elsewhere, {"results_dir": str(moved), "librispeech": {"root": str(mounted)}})
    run_rule(
        "build_corpus.py",
        moved / "logs" / "build_corpus.log",
        output={"info": moved / "corpus" / "librispeech.json"},
        params={"corpus": job_params.corpus(elsewhere), "synth_tree": moved / "corpus" / "synth"},
    )
    fault.data_lost(missing_audio(manifest), "utterances unreadable after the tree moved")
    assert_batches_read_from(manifest, mounted, config["data"]["sample_rate"])
    fault.survived(
        "the results folder moved, then the LibriSpeech tree: config librispeech.root and the corpus "
        "job alone made every utterance readable, no manifest rebuilt"
    )


def run_rule(script: str, log: Path, threads: int = 1, **sections: dict) -> None:
    """Run a rule's script as Snakemake would: a stand-in `snakemake` object with the rule's input,
    output, params and wildcards (paths as strings, like Snakemake's)."""
    namespaces = {
        name: SimpleNamespace(
            **{key: str(value) if isinstance(value, Path) else value for key, value in values.items()}
        )
        for name, values in sections.items()
    }
    smk = SimpleNamespace(log=[str(log)], threads=threads, **namespaces)
    runpy.run_path(str(REPO / "workflow_scripts" / script), init_globals={"snakemake": smk})


def run_manifest_rule(tmp_path: Path, data: dict) -> Path:
    """Run the rule's script on a corpus record of `tmp_path/corpus`; return its output folder."""
    out = tmp_path / "results"
    out.mkdir()
    corpus_json = out / "corpus.json"
    corpus_json.write_text(json.dumps(corpus_info(tmp_path / "corpus", [SUBSET])))
    run_rule(
        "build_manifest.py",
        out / "manifest.log",
        input={"corpus": corpus_json},
        output={"manifest": out / "manifest.tsv", "rejects": out / "rejects.tsv"},
        wildcards={"split": SPLIT},
        params={"data": data},
    )
    return out
