"""A user's own corpus (corpus: manifests): lhotse manifests, Kaldi data directories and tables give the
manifest the LibriSpeech reader gives for the same utterances; other rates, stereo and segments are read
in place; bad listings are named by file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
import torchaudio

from omni.data.corpus import CorpusError, describe_manifests
from omni.data.manifest import BadCorpusError, audio_spans, build_manifest
from omni.data.sources import SourceError
from omni.data.text import TextConfigError, TextNormaliser, read_replacements
from omni.data.voices import Voices
from omni.results.bootstrap import BootstrapSettings
from omni.results.wer_tables import Runs, resampling_unit
from tests.conftest import LIBRISPEECH_SAMPLE, manifest_section
from tests.faults import FaultRecorder

SUBSET = "test-other"
SPLITS = ("train", "dev", "test-clean", "test-other")
pytestmark = pytest.mark.skipif(not (LIBRISPEECH_SAMPLE / SUBSET).is_dir(), reason="no LibriSpeech sample")


def sample_utterances() -> list[tuple[str, Path, str]]:
    """(id, flac, transcript) of the sample, read from its trans.txt files independently of omni."""
    found = []
    for trans in sorted((LIBRISPEECH_SAMPLE / SUBSET).rglob("*.trans.txt")):
        for line in trans.read_text().splitlines():
            utt_id, text = line.split(" ", 1)
            found.append((utt_id, trans.parent / f"{utt_id}.flac", text))
    return found


def manifests_corpus(listing: dict) -> dict:
    """The corpus record of a study whose every split is read from `listing`."""
    return describe_manifests({split: listing for split in SPLITS})


def librispeech_manifest() -> pd.DataFrame:
    info = {"corpus": "librispeech", "root": str(LIBRISPEECH_SAMPLE), "subsets": {"test-other": [SUBSET]}}
    kept, rejects = build_manifest(info, "test-other", manifest_section(on_bad_utterance="fail"))
    assert rejects.empty and len(kept) == 20
    return kept


def read(listing: dict, **data: object) -> tuple[pd.DataFrame, pd.DataFrame]:
    return build_manifest(manifests_corpus(listing), "test-other", manifest_section(**data))


def write_kaldi(folder: Path, utterances: list[tuple[str, Path, str]], speakers: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wav.scp").write_text("".join(f"{utt} {path}\n" for utt, path, _ in utterances))
    (folder / "text").write_text("".join(f"{utt} {text}\n" for utt, _, text in utterances))
    (folder / "utt2spk").write_text(
        "".join(f"{utt} {utt.split('-')[0] if speakers else utt}\n" for utt, _, _ in utterances)
    )
    return folder


def write_table(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=header).to_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index=False)
    return path


@pytest.fixture(scope="module")
def lhotse_manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lhotse's own LibriSpeech recipe run on the sample."""
    from lhotse.recipes import prepare_librispeech

    out = tmp_path_factory.mktemp("lhotse")
    prepare_librispeech(str(LIBRISPEECH_SAMPLE), dataset_parts=[SUBSET], output_dir=str(out))
    return out


def test_lhotse_recipe_manifests_give_the_librispeech_readers_manifest(lhotse_manifests: Path) -> None:
    recordings = lhotse_manifests / f"librispeech_recordings_{SUBSET}.jsonl.gz"
    supervisions = lhotse_manifests / f"librispeech_supervisions_{SUBSET}.jsonl.gz"
    kept, rejects = read({"format": "lhotse", "recordings": str(recordings), "supervisions": str(supervisions)})
    assert rejects.empty
    pd.testing.assert_frame_equal(kept, librispeech_manifest())


def test_a_lhotse_cutset_gives_the_same_manifest(lhotse_manifests: Path, tmp_path: Path) -> None:
    from lhotse import CutSet, load_manifest

    cuts = CutSet.from_manifests(
        load_manifest(lhotse_manifests / f"librispeech_recordings_{SUBSET}.jsonl.gz"),
        load_manifest(lhotse_manifests / f"librispeech_supervisions_{SUBSET}.jsonl.gz"),
    )
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    kept, rejects = read({"format": "lhotse", "cuts": str(tmp_path / "cuts.jsonl.gz")})
    assert rejects.empty
    pd.testing.assert_frame_equal(kept, librispeech_manifest())


def test_a_kaldi_directory_and_a_table_give_the_same_manifest(tmp_path: Path) -> None:
    utterances = sample_utterances()
    kaldi = write_kaldi(tmp_path / "kaldi", utterances)
    table = write_table(
        tmp_path / "lists" / "sample.csv",
        ["utt_id", "audio_path", "transcript", "speaker"],
        [[utt, path, text, utt.split("-")[0]] for utt, path, text in utterances],
    )
    expected = librispeech_manifest()
    for listing in ({"format": "kaldi", "dir": str(kaldi)}, {"format": "table", "table": str(table)}):
        kept, rejects = read(listing)
        assert rejects.empty, listing
        pd.testing.assert_frame_equal(kept, expected)


def test_relative_paths_are_read_from_the_listings_folder_and_ids_default_to_file_names(tmp_path: Path) -> None:
    [(utt, flac, text), *_] = sample_utterances()
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / flac.name).write_bytes(flac.read_bytes())
    table = write_table(tmp_path / "audio.tsv", ["audio_path", "transcript"], [[f"audio/{flac.name}", text]])
    kept, _ = read({"format": "table", "table": str(table)})
    assert list(kept["utt_id"]) == [utt] and kept["audio_path"][0] == str(tmp_path / "audio" / flac.name)
    assert kept["speaker"][0] == "", "a table without a speaker column names no speaker"


def test_wav_at_8_22_and_44_khz_stereo_flac_and_segments_are_read_in_place(tmp_path: Path) -> None:
    """Every file holds the same first utterance; a 44.1 kHz stereo one carries it on both channels."""
    [(utt, flac, text), *_] = sample_utterances()
    wave, rate = soundfile.read(flac, dtype="float32")
    rows = []
    for new_rate, channels in ((8000, 1), (22050, 1), (44100, 2)):
        resampled = torchaudio.functional.resample(torch.from_numpy(wave), rate, new_rate).numpy()
        path = tmp_path / f"{new_rate}.wav"
        soundfile.write(path, np.stack([resampled] * channels, axis=1), new_rate, subtype="FLOAT")
        rows.append([f"rate{new_rate}", path.name, text, "s1", "", ""])
    rows.append(["flac", str(flac), text, "s1", "", ""])
    rows.append(["first-second", str(flac), "THERE'S", "s1", 0.0, 1.0])
    rows.append(["next-two", str(flac), "IRON", "s1", 1.0, 3.0])
    table = write_table(
        tmp_path / "mixed.tsv", ["utt_id", "audio_path", "transcript", "speaker", "start_s", "end_s"], rows
    )
    kept, rejects = read({"format": "table", "table": str(table)}, resample=True)
    assert rejects.empty
    kept = kept.set_index("utt_id")
    spans = dict(zip(kept.index, audio_spans(kept.reset_index())))
    reference = torch.from_numpy(wave)
    for name in ("rate8000", "rate22050", "rate44100"):
        audio = spans[name].read(16000, resample=True)
        assert abs(audio.numel() - reference.numel()) <= 1, name
        length = min(audio.numel(), reference.numel())
        error = (audio[:length] - reference[:length]).pow(2).mean() / reference.pow(2).mean()
        limit = 0.5 if name == "rate8000" else 0.02  # 8 kHz keeps only the band below 4 kHz
        assert error < limit, (name, float(error))
    assert kept.loc["rate44100", "sample_rate"] == 44100 and kept.loc["rate44100", "num_samples"] > 2 * len(wave)
    assert torch.equal(spans["flac"].read(16000, resample=False), reference)
    assert (kept.loc["first-second", "offset_samples"], kept.loc["first-second", "num_samples"]) == (0, 16000)
    assert (kept.loc["next-two", "offset_samples"], kept.loc["next-two", "num_samples"]) == (16000, 32000)
    assert torch.equal(spans["next-two"].read(16000, resample=False), reference[16000:48000])
    assert kept.loc["next-two", "duration_s"] == 2.0


def test_kaldi_segments_cut_utterances_from_a_recording(tmp_path: Path) -> None:
    [(utt, flac, _), *_] = sample_utterances()
    folder = tmp_path / "kaldi"
    folder.mkdir()
    (folder / "wav.scp").write_text(f"rec1 {flac}\n")
    (folder / "segments").write_text("a rec1 0.00 1.50\nb rec1 1.50 -1\n")
    (folder / "text").write_text("a THERE'S IRON\nb THEY SAY\n")
    (folder / "utt2spk").write_text("a spk\nb spk\n")
    kept, rejects = read({"format": "kaldi", "dir": str(folder)})
    assert rejects.empty
    total = soundfile.info(flac).frames
    assert list(kept["offset_samples"]) == [0, 24000] and list(kept["num_samples"]) == [24000, total - 24000]


@pytest.mark.fault("bad corpora")
def test_each_bad_listing_line_is_named_by_file_and_line(tmp_path: Path, fault: FaultRecorder) -> None:
    """A missing audio file, an empty transcript, a segment past the end of its recording and a duplicate
    id: rejects rows under `skip`, and one error naming each file:line under `fail`."""
    utterances = sample_utterances()[:3]
    total_s = soundfile.info(utterances[2][1]).duration
    rows = [
        [utterances[0][0], utterances[0][1], utterances[0][2], 0.0, ""],
        ["gone", tmp_path / "nowhere.flac", "WHERE IS IT", 0.0, ""],
        ["silent", utterances[1][1], "  ", 0.0, ""],
        ["too-far", utterances[2][1], "TOO FAR", 1.0, round(total_s + 2.0, 2)],
        ["twice", utterances[1][1], "ONE", 0.0, 1.0],
        ["twice", utterances[1][1], "TWO", 1.0, 2.0],
    ]
    table = write_table(tmp_path / "bad.tsv", ["utt_id", "audio_path", "transcript", "start_s", "end_s"], rows)
    kept, rejects = read({"format": "table", "table": str(table)}, on_bad_utterance="skip")
    fault.data_lost(0 if list(kept["utt_id"]) == [utterances[0][0]] else 1, "the good utterance")
    reasons = dict(zip(rejects["utt_id"], rejects["reason"]))
    assert sorted(rejects["utt_id"]) == ["gone", "silent", "too-far", "twice", "twice"]
    assert reasons["gone"] == f"{table}:3: audio file {tmp_path / 'nowhere.flac'} does not exist"
    assert reasons["silent"].startswith(f"empty transcript at {table}:4")
    assert (
        f"{table}:5: segment ends at {round(total_s + 2.0, 2)} s, past the end of its recording" in reasons["too-far"]
    )
    assert sorted(rejects[rejects["utt_id"] == "twice"]["reason"]) == [
        f"duplicate utterance id (also at {table}:6)",
        f"duplicate utterance id (also at {table}:7)",
    ]
    with pytest.raises(BadCorpusError) as caught:
        read({"format": "table", "table": str(table)}, on_bad_utterance="fail")
    message = str(caught.value)
    assert message.startswith("5 bad utterance(s)")
    fault.named(message, f"{table}:3", f"{table}:4", f"{table}:5", f"{table}:6", f"{table}:7")
    fault.survived("every bad line a rejects row under skip, all named by file:line in one error under fail")


@pytest.mark.fault("bad corpora")
def test_an_unknown_column_or_a_missing_listing_is_one_error_naming_it(tmp_path: Path, fault: FaultRecorder) -> None:
    table = write_table(tmp_path / "t.csv", ["audio_path", "transcript", "spaeker"], [["a.flac", "A", "s"]])
    with pytest.raises(SourceError, match=r"unknown \['spaeker'\]") as caught:
        read({"format": "table", "table": str(table)})
    fault.named(str(caught.value), f"{table}:1", "spaeker")
    with pytest.raises(CorpusError, match=r"config key 'manifests.train.table'") as missing:
        manifests_corpus({"format": "table", "table": str(tmp_path / "absent.tsv")})
    fault.named(str(missing.value), str(tmp_path / "absent.tsv"))
    kaldi = write_kaldi(tmp_path / "kaldi", sample_utterances()[:1])
    (kaldi / "utt2spk").unlink()
    with pytest.raises(SourceError, match="no utt2spk") as no_speakers:
        read({"format": "kaldi", "dir": str(kaldi)})
    fault.named(str(no_speakers.value), str(kaldi))
    cuts = tmp_path / "cuts.jsonl.gz"
    with gzip.open(cuts, "wt") as handle:
        handle.write(json.dumps({"not": "a cut"}) + "\n")
    with pytest.raises(SourceError, match="lhotse manifest") as not_lhotse:
        read({"format": "lhotse", "cuts": str(cuts)})
    fault.named(str(not_lhotse.value), str(cuts))
    fault.survived(
        "an unknown column, a missing listing, a Kaldi directory without utt2spk and a file lhotse cannot "
        "read each stopped the corpus with one error naming the file (and line or config key)"
    )


def test_kaldi_piped_commands_and_duplicate_lines_are_rejected_by_line(tmp_path: Path) -> None:
    utterances = sample_utterances()[:3]
    folder = write_kaldi(tmp_path / "kaldi", utterances)
    scp = folder / "wav.scp"
    lines = scp.read_text().splitlines()
    lines[1] = f"{utterances[1][0]} flac -d -c {utterances[1][1]} |"
    scp.write_text("\n".join(lines) + "\n")
    with (folder / "text").open("a") as handle:
        handle.write(f"{utterances[2][0]} AGAIN\n")
    kept, rejects = read({"format": "kaldi", "dir": str(folder)}, on_bad_utterance="skip")
    assert list(kept["utt_id"]) == [utterances[0][0]]
    reasons = dict(zip(rejects["location"], rejects["reason"]))
    assert "not a plain path" in reasons[f"{scp}:2"]
    assert reasons[f"{folder / 'text'}:3"].endswith(f"(also at {folder / 'text'}:4)")
    assert reasons[f"{folder / 'text'}:4"].endswith(f"(also at {folder / 'text'}:3)")


def test_text_is_normalised_as_configured_and_the_rest_rejected_naming_characters(tmp_path: Path) -> None:
    replacements = tmp_path / "map.tsv"
    replacements.write_text("%\t PERCENT \n10\tTEN\n1\tONE\n")
    pairs = read_replacements(replacements)
    assert pairs[0] == ("10", "TEN"), "longest first: 10 before 1"
    upper = TextNormaliser("upper", True, pairs, "ABCDEFGHIJKLMNOPQRSTUVWXYZ' ")
    assert upper("Don't stop: 10% -- now, 1 time!") == "DON'T STOP TEN PERCENT NOW ONE TIME"
    assert upper.outside(upper("Café № 7")) == ["7", "É", "№"]
    keep = TextNormaliser("keep", False, (), None)
    assert keep("Größe, naïve") == "Größe, naïve" and keep.outside("Größe, naïve") == [","]
    assert TextNormaliser("lower", True, (), None)("Ünïcode—Text…") == "ünïcode text"
    replacements.write_text("%\n")
    with pytest.raises(TextConfigError, match=f"{replacements}:1"):
        read_replacements(replacements)


def test_digits_unmapped_are_a_rejects_row_naming_them(tmp_path: Path) -> None:
    [(utt, flac, text), *_] = sample_utterances()
    table = write_table(
        tmp_path / "t.tsv",
        ["utt_id", "audio_path", "transcript"],
        [[utt, flac, "Room 101, please."], ["good", flac, text]],
    )
    _, rejects = read({"format": "table", "table": str(table)}, on_bad_utterance="skip")
    [reason] = rejects["reason"]
    assert reason == (
        f"characters outside config data.alphabet at {table}:2 (map them with data.text.replacements): '0' '1'"
    )


def test_without_speakers_the_tables_resample_utterances_and_say_why() -> None:
    utt_ids = pd.Series(["a", "b", "c"])
    listed = Voices({"a": "", "b": "", "c": ""}, {"a": "", "b": "", "c": ""})
    runs = Runs(
        seeds=(1,),
        errors=np.zeros((1, 3)),
        utt_ids=utt_ids,
        ref_words=pd.Series([1, 1, 1]),
        source="x",
        voices=utt_ids.map(listed.voice_of).to_numpy(),
        speakers=utt_ids.map(listed.speaker_of).to_numpy(),
        named_speakers=listed.names_speakers(utt_ids),
    )
    assert (
        resampling_unit(runs, BootstrapSettings(resamples=10, seed=0, confidence=0.9, min_speakers=2))
        == "utterances (no speakers named)"
    )
