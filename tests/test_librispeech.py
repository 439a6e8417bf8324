"""Real LibriSpeech files (the shared 20-utterance test-other sample, found beside the repository): the
manifest reader, and the LibriSpeech study's whole path (configs/librispeech.yaml, shrunk by
configs/librispeech-sample.yaml) read through a user's table (configs/manifests-example.yaml) through every rule
to its tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import soundfile

from omni.data.audio import AudioError, read_audio
from omni.data.manifest import build_manifest
from tests.conftest import LIBRISPEECH_SAMPLE, REPO, manifest_section

SAMPLE_ROOT = LIBRISPEECH_SAMPLE
SUBSET = "test-other"
DATA_CFG = manifest_section(resample=False, on_bad_utterance="fail")

pytestmark = pytest.mark.skipif(not (SAMPLE_ROOT / SUBSET).is_dir(), reason=f"no LibriSpeech sample at {SAMPLE_ROOT}")


def transcripts_in_tree() -> dict[str, str]:
    """What the trans.txt files say, read independently of omni.manifest."""
    lines = {}
    for trans in (SAMPLE_ROOT / SUBSET).rglob("*.trans.txt"):
        for line in trans.read_text().splitlines():
            utt_id, text = line.split(" ", 1)
            lines[utt_id] = text
    return lines


@pytest.fixture(scope="module")
def sample_manifest():
    info = {"corpus": "librispeech", "root": str(SAMPLE_ROOT), "subsets": {"test-other": [SUBSET]}}
    return build_manifest(info, "test-other", DATA_CFG)


def test_every_utterance_is_read(sample_manifest) -> None:
    kept, rejects = sample_manifest
    flacs = sorted(path.stem for path in (SAMPLE_ROOT / SUBSET).rglob("*.flac"))
    assert len(flacs) == 20
    assert list(kept["utt_id"]) == flacs
    assert rejects.empty


def test_durations_equal_soundfile_frames(sample_manifest) -> None:
    kept, _ = sample_manifest
    for row in kept.itertuples():
        info = soundfile.info(row.audio_path)
        assert row.num_samples == info.frames
        assert row.sample_rate == info.samplerate == DATA_CFG["sample_rate"]
        assert row.duration_s == info.frames / info.samplerate


def test_transcripts_equal_trans_txt(sample_manifest) -> None:
    kept, _ = sample_manifest
    assert dict(zip(kept["utt_id"], kept["transcript"])) == transcripts_in_tree()


def test_read_audio_gives_mono_float_of_the_declared_length(sample_manifest) -> None:
    kept, _ = sample_manifest
    row = kept.iloc[0]
    waveform = read_audio(row["audio_path"], DATA_CFG["sample_rate"], resample=False)
    assert waveform.dtype.is_floating_point and waveform.ndim == 1
    assert len(waveform) == row["num_samples"]
    assert 0 < waveform.abs().max() <= 1


def test_read_audio_resamples_when_allowed(sample_manifest) -> None:
    kept, _ = sample_manifest
    row = kept.iloc[0]
    target = DATA_CFG["sample_rate"] // 2
    waveform = read_audio(row["audio_path"], target, resample=True)
    assert len(waveform) == row["num_samples"] // 2


def test_read_audio_refuses_another_rate_without_resampling(sample_manifest) -> None:
    kept, _ = sample_manifest
    with pytest.raises(AudioError, match="config data.resample is false"):
        read_audio(kept["audio_path"][0], DATA_CFG["sample_rate"] // 2, resample=False)


def test_the_librispeech_study_runs_every_rule_on_real_audio_read_from_a_users_table(tmp_path: Path) -> None:
    """The sample study through `corpus: manifests` (configs/manifests-example.yaml): a user's table in, every rule
    run; the table gives the LibriSpeech reader's manifest (tests/test_sources.py), so this is that study too."""
    table = REPO / "configs" / "manifests-example" / "librispeech-sample.tsv"
    listings = ", ".join(
        f"{split}: {{format: table, table: {table}}}" for split in ("train", "dev", "test-clean", "test-other")
    )
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--cores",
        "2",
        "--configfile",
        str(REPO / "configs" / "librispeech.yaml"),
        str(REPO / "configs" / "librispeech-sample.yaml"),
        str(REPO / "configs" / "manifests-example.yaml"),
        "--config",
        f"manifests={{{listings}}}",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-4000:]
    results = tmp_path / "results" / "manifests-example"
    wer = pd.read_csv(results / "tables" / "wer.csv")
    assert {"dense", "control", "individual", "omni", "omni-searched"} <= set(wer["arm"])
    assert (wer["utterances"] == 20).all() and wer["wer"].notna().all()
    cost = pd.read_csv(results / "tables" / "cost.csv")
    dense = cost[(cost["section"] == "job") & (cost["rule"] == "train_dense")].iloc[0]
    assert dense["processes"] == 2, "trained data-parallel through torchrun"
    stats = (results / "data" / "feature_stats.json").read_text()
    assert '"utterances": 10' in stats, "statistics from the configured sample"
    [log_file] = (results / "logs" / "train_dense").glob("seed*.log")  # the one dense model's job log
    log = log_file.read_text()
    assert "train.bf16" in log and "dense" in log, "the ranks' output reaches the job's log"
