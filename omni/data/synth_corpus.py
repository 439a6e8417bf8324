"""The embedded corpus: espeak-ng speech in the LibriSpeech layout, built reproducibly.

Speakers are espeak voice/variant combinations with their own speaking rate and pitch.
train/dev/test-clean share the training voices; test-other is the mismatched condition of
LibriSpeech's "other": voices never used elsewhere, speaking rates outside the training
range, and additive noise at a fixed SNR. Every random choice is made up front in the parent
process (`plan_corpus`); workers only render an utterance from its plan, so the bytes written
do not depend on how many workers there are or in which order they finish.

Noise of test-other (one kind per utterance, drawn with the plan): white; pink (1/f power,
shaped in the frequency domain); babble (BABBLE_TALKERS other espeak sentences with
test-other voices, overlapped at random offsets).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import random
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
import torchaudio
from tqdm import tqdm

from omni.data import espeak, synth_text
from omni.data.espeak import PITCH_RANGE, RATE_RANGE_WPM
from omni.runtime import set_threads
from omni.write_errors import explained_write_errors

SPLITS = ("train", "dev", "test-clean", "test-other")
OTHER_SPLIT = "test-other"
TEXT_ORDER = ("test-other", "test-clean", "dev", "train")
"""Evaluation text first: held-out sentences stay fixed when the training size changes."""

KEEP_SILENCE_S = 0.15
"""Silence kept (or padded) before and after the speech, like a tightly segmented corpus."""
SILENCE_FRACTION_OF_PEAK = 0.01
"""A native sample quieter than this fraction of the utterance peak counts as silence."""
RATE_JITTER_WPM = 6
PITCH_JITTER = 4
"""Per-utterance wobble around a speaker's rate and pitch (uniform, +-)."""
PEAK_LIMIT = 0.95
"""Noisy mixes louder than this are scaled down rather than clipped."""
NOISE_KINDS = ("white", "pink", "babble")
BABBLE_TALKERS = 4
BABBLE_TEXTS = 64
"""Sentences of test-other that babble talkers draw from."""
MIN_SPEAKER_ID_DIGITS = 3
"""Speaker ids look like LibriSpeech's: split k uses (k+1)*10**d + i, disjoint across splits."""
CHAPTER_ID_FACTOR = 10
"""One chapter per speaker; its id is the speaker id times this, unique across the corpus."""
FLAC_SUBTYPE = "PCM_16"
PROGRESS_MIN_INTERVAL_S = 2.0
POOL_CHUNKSIZE = 4
SPEAKERS_FILE = "SPEAKERS.TXT"
PARTIAL_SUFFIX = ".partial"
OLD_SUFFIX = ".old"
SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600
HOURS_DECIMALS = 4


@dataclass(frozen=True)
class Speaker:
    split: str
    speaker_id: int
    chapter_id: int
    voice: str
    rate_wpm: int
    pitch: int


@dataclass(frozen=True)
class Voicing:
    """What espeak is asked to say, and how."""

    text: str
    voice: str
    rate_wpm: int
    pitch: int


@dataclass(frozen=True)
class Noise:
    kind: str
    snr_db: float
    seed: tuple[int, ...]
    babble: tuple[Voicing, ...]


@dataclass(frozen=True)
class Utterance:
    speaker: Speaker
    index: int
    transcript: str
    voicing: Voicing
    noise: Noise | None

    @property
    def utt_id(self) -> str:
        return f"{self.speaker.speaker_id}-{self.speaker.chapter_id}-{self.index:04d}"

    @property
    def folder(self) -> Path:
        return Path(self.speaker.split) / str(self.speaker.speaker_id) / str(self.speaker.chapter_id)

    @property
    def path(self) -> Path:
        return self.folder / f"{self.utt_id}.flac"


Range = tuple[int, int]
RANGE_LIMITS: dict[str, Range] = {
    "rate_wpm": RATE_RANGE_WPM,
    "other_rate_wpm": RATE_RANGE_WPM,
    "pitch": PITCH_RANGE,
}


def _ranges(spec: Mapping[str, Any]) -> dict[str, Range]:
    """The schema checks shape only; espeak would silently clamp values outside its limits."""
    ranges = {}
    for key, limits in RANGE_LIMITS.items():
        low, high = spec["synth"][key]
        if not (limits[0] <= low <= high <= limits[1]):
            raise ValueError(
                f"config key 'synth.{key}': {[low, high]} must be ordered and within espeak's {list(limits)}"
            )
        ranges[key] = (int(low), int(high))
    return ranges


def _outside_range(rng: random.Random, wide: Range, inside: Range) -> int:
    """A rate from `wide` but outside `inside` (either extreme), so test-other is out of domain."""
    sides = [side for side in ((wide[0], inside[0] - 1), (inside[1] + 1, wide[1])) if side[0] <= side[1]]
    low, high = rng.choice(sides) if sides else wide
    return rng.randint(low, high)


def _rate_bounds(speaker: Speaker, ranges: dict[str, Range]) -> Range:
    """Keep jittered rates on the speaker's side of the training range (test-other stays out of it)."""
    inside = ranges["rate_wpm"]
    if speaker.split != OTHER_SPLIT:
        return inside
    wide = ranges["other_rate_wpm"]
    if speaker.rate_wpm < inside[0]:
        return wide[0], inside[0] - 1
    if speaker.rate_wpm > inside[1]:
        return inside[1] + 1, wide[1]
    return wide


def _jitter(rng: random.Random, value: int, spread: int, bounds: Range) -> int:
    return min(max(value + rng.randint(-spread, spread), bounds[0]), bounds[1])


def _speakers(
    spec: Mapping[str, Any],
    ranges: dict[str, Range],
    split: str,
    count: int,
    rng: random.Random,
) -> list[Speaker]:
    synth = spec["synth"]
    other = split == OTHER_SPLIT
    voices = list(synth["other_voices"] if other else synth["train_voices"])
    rng.shuffle(voices)
    id_block = 10 ** max(MIN_SPEAKER_ID_DIGITS, len(str(synth["speakers_per_split"])))
    speakers = []
    for i in range(min(synth["speakers_per_split"], count)):
        speaker_id = (SPLITS.index(split) + 1) * id_block + i
        speakers.append(
            Speaker(
                split=split,
                speaker_id=speaker_id,
                chapter_id=speaker_id * CHAPTER_ID_FACTOR,
                voice=voices[i % len(voices)],
                rate_wpm=_outside_range(rng, ranges["other_rate_wpm"], ranges["rate_wpm"])
                if other
                else rng.randint(*ranges["rate_wpm"]),
                pitch=rng.randint(*ranges["pitch"]),
            )
        )
    return speakers


def _noise(
    spec: Mapping[str, Any], ranges: dict[str, Range], rng: random.Random, utt_number: int, babble_texts: Sequence[str]
) -> Noise:
    synth = spec["synth"]
    kind = rng.choice(NOISE_KINDS)
    babble: tuple[Voicing, ...] = ()
    if kind == "babble":
        babble = tuple(
            Voicing(
                synth_text.spoken_form(rng.choice(babble_texts)),
                rng.choice(synth["other_voices"]),
                rng.randint(*ranges["rate_wpm"]),
                rng.randint(*ranges["pitch"]),
            )
            for _ in range(BABBLE_TALKERS)
        )
    snr_db = float(synth["other_noise_snr_db"])
    return Noise(kind=kind, snr_db=snr_db, seed=(spec["seed"], utt_number), babble=babble)


def plan_corpus(spec: Mapping[str, Any]) -> list[Utterance]:
    """Every utterance's text, speaker, voicing and noise, from `spec['seed']` alone."""
    synth = spec["synth"]
    ranges = _ranges(spec)
    texts = synth_text.generate_splits(
        spec["seed"],
        {split: synth["splits"][split] for split in TEXT_ORDER},
        synth["min_words"],
        synth["max_words"],
        spec["alphabet"],
    )
    utterances = []
    for split in SPLITS:
        rng = random.Random(f"{spec['seed']}:speakers:{split}")
        speakers = _speakers(spec, ranges, split, len(texts[split]), rng)
        babble_texts = texts[split][:BABBLE_TEXTS]
        for number, transcript in enumerate(texts[split]):
            speaker = speakers[number % len(speakers)]
            voicing = Voicing(
                text=synth_text.spoken_form(transcript),
                voice=speaker.voice,
                rate_wpm=_jitter(rng, speaker.rate_wpm, RATE_JITTER_WPM, _rate_bounds(speaker, ranges)),
                pitch=_jitter(rng, speaker.pitch, PITCH_JITTER, ranges["pitch"]),
            )
            noise = _noise(spec, ranges, rng, number, babble_texts) if split == OTHER_SPLIT else None
            utterances.append(Utterance(speaker, number // len(speakers), transcript, voicing, noise))
    return utterances


def _speak(voicing: Voicing, target_rate: int) -> np.ndarray:
    """Float speech at `target_rate`, trimmed to the same short margin of silence."""
    samples, native_rate = espeak.synthesize(voicing.text, voicing.voice, voicing.rate_wpm, voicing.pitch)
    audio = samples.astype(np.float32) / np.float32(-np.iinfo(np.int16).min)
    return _resample(_trim(audio, native_rate), native_rate, target_rate)


def _trim(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cut espeak's long lead-in and tail, keeping the same short margin on every utterance."""
    loud = np.flatnonzero(np.abs(audio) > SILENCE_FRACTION_OF_PEAK * np.abs(audio).max(initial=0.0))
    margin = np.zeros(round(KEEP_SILENCE_S * sample_rate), dtype=np.float32)
    if loud.size == 0:
        return margin
    return np.concatenate([margin, audio[loud[0] : loud[-1] + 1], margin])


@functools.cache
def _resampler(source_rate: int, target_rate: int) -> torchaudio.transforms.Resample:
    """torchaudio.functional.resample with its sinc kernel built once per process, not per call."""
    return torchaudio.transforms.Resample(source_rate, target_rate)


def _resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate:
        return audio
    with torch.no_grad():
        return _resampler(source_rate, target_rate)(torch.from_numpy(audio)).numpy()


def _pink(generator: np.random.Generator, length: int) -> np.ndarray:
    spectrum = np.fft.rfft(generator.standard_normal(length))
    frequencies = np.arange(spectrum.size, dtype=np.float64)
    frequencies[0] = 1.0  # leave DC alone instead of dividing by zero
    return np.fft.irfft(spectrum / np.sqrt(frequencies), n=length)


def _babble(noise: Noise, generator: np.random.Generator, length: int, target_rate: int) -> np.ndarray:
    mix = np.zeros(length)
    for voicing in noise.babble:
        talker = _speak(voicing, target_rate)
        talker = np.tile(talker, length // max(talker.size, 1) + 2)  # loop short sentences under long ones
        start = generator.integers(0, talker.size - length + 1)
        mix += talker[start : start + length]
    return mix


def _add_noise(speech: np.ndarray, noise: Noise, target_rate: int) -> np.ndarray:
    generator = np.random.default_rng(list(noise.seed))
    if noise.kind == "white":
        signal = generator.standard_normal(speech.size)
    elif noise.kind == "pink":
        signal = _pink(generator, speech.size)
    else:
        signal = _babble(noise, generator, speech.size, target_rate)
    if not np.any(signal):
        return speech.astype(np.float32)  # no noise energy, no SNR to set
    mixed = torchaudio.functional.add_noise(
        torch.from_numpy(speech.astype(np.float64))[None],
        torch.from_numpy(signal)[None],
        torch.tensor([float(noise.snr_db)], dtype=torch.float64),
    )[0].numpy()
    peak = np.abs(mixed).max(initial=0.0)
    return (mixed * (PEAK_LIMIT / peak) if peak > PEAK_LIMIT else mixed).astype(np.float32)


def render(utterance: Utterance, target_rate: int) -> np.ndarray:
    """The utterance's int16 samples at `target_rate`: a pure function of its plan."""
    speech = _speak(utterance.voicing, target_rate)
    if utterance.noise is not None:
        speech = _add_noise(speech, utterance.noise, target_rate)
    scale = np.iinfo(np.int16).max
    return np.clip(np.round(speech * scale), -scale - 1, scale).astype(np.int16)


def _init_worker() -> None:
    set_threads(1)


def _render_to_file(job: tuple[Utterance, Path, int]) -> int:
    utterance, root, target_rate = job
    samples = render(utterance, target_rate)
    soundfile.write(root / utterance.path, samples, target_rate, format="FLAC", subtype=FLAC_SUBTYPE)
    return samples.size


def check_voices(spec: Mapping[str, Any]) -> None:
    """espeak silently substitutes a default for an unknown variant; refuse before building."""
    for key in ("train_voices", "other_voices"):
        espeak.check_voices(spec["synth"][key], f"synth.{key}")


def _write_texts(root: Path, utterances: Sequence[Utterance], seconds: Sequence[float]) -> None:
    """Per-chapter transcripts, and a SPEAKERS.TXT like LibriSpeech's saying who each speaker is."""
    chapters: dict[Path, list[str]] = {}
    minutes: dict[Speaker, float] = {}
    for utterance, duration in zip(utterances, seconds):
        chapters.setdefault(utterance.folder, []).append(f"{utterance.utt_id} {utterance.transcript}\n")
        minutes[utterance.speaker] = minutes.get(utterance.speaker, 0.0) + duration / SECONDS_PER_MINUTE
    for folder, lines in chapters.items():
        speaker_id, chapter_id = folder.parts[-2:]
        (root / folder / f"{speaker_id}-{chapter_id}.trans.txt").write_text("".join(sorted(lines)))
    rows = [";ID  |SUBSET      |MINUTES|VOICE            |RATE_WPM|PITCH\n"]
    for speaker, total in minutes.items():
        rows.append(
            f"{speaker.speaker_id:<5}|{speaker.split:<12}|{total:7.2f}|{speaker.voice:<17}|"
            f"{speaker.rate_wpm:8d}|{speaker.pitch:5d}\n"
        )
    (root / SPEAKERS_FILE).write_text("".join(rows))


def _render_all(utterances: Sequence[Utterance], root: Path, target_rate: int, workers: int) -> list[int]:
    """Render in a pool of `workers` processes (espeak is not thread-safe).

    The pool forks rather than spawns: a spawned child re-executes the parent's main script,
    and Snakemake `script:` files are plain top-level code. Each utterance gets a freshly
    loaded espeak (see omni.data.espeak), so no worker's history leaks into another's output.
    """
    jobs = [(utterance, root, target_rate) for utterance in utterances]
    with multiprocessing.get_context("fork").Pool(workers, initializer=_init_worker) as pool:
        results = pool.imap(_render_to_file, jobs, chunksize=POOL_CHUNKSIZE)
        return list(
            tqdm(
                results,
                total=len(jobs),
                desc="synthesising",
                unit="utt",
                file=sys.stderr,
                mininterval=PROGRESS_MIN_INTERVAL_S,
            )
        )


def _replace_dir(built: Path, final: Path) -> None:
    """Swap a finished tree in; an older tree is moved aside first (os.replace needs an empty target)."""
    old = final.with_name(final.name + OLD_SUFFIX)
    if final.exists():
        os.replace(final, old)
    os.replace(built, final)
    shutil.rmtree(old, ignore_errors=True)


def build_synth_corpus(spec: Mapping[str, Any], out_root: Path, workers: int) -> dict[str, Any]:
    """Write the corpus tree at `out_root` atomically and return its statistics. A failed build leaves
    no partial tree; a write the filesystem refused says so (omni.write_errors)."""
    started = time.monotonic()
    out_root = Path(out_root)
    check_voices(spec)
    utterances = plan_corpus(spec)
    target_rate = spec["sample_rate"]
    partial = out_root.with_name(out_root.name + PARTIAL_SUFFIX)
    for stale in (partial, out_root.with_name(out_root.name + OLD_SUFFIX)):
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed build
    try:
        with explained_write_errors(partial):
            for folder in {utterance.folder for utterance in utterances}:
                (partial / folder).mkdir(parents=True, exist_ok=True)
            samples = _render_all(utterances, partial, target_rate, workers)
            seconds = [count / target_rate for count in samples]
            _write_texts(partial, utterances, seconds)
            _replace_dir(partial, out_root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # a failed build must not keep filling the disk
        raise
    return _stats(utterances, seconds, time.monotonic() - started)


def _stats(utterances: Sequence[Utterance], seconds: Sequence[float], build_seconds: float) -> dict[str, Any]:
    transcripts = {split: [u.transcript for u in utterances if u.speaker.split == split] for split in SPLITS}
    train_words = synth_text.vocabulary(transcripts["train"])
    all_words = synth_text.vocabulary([t for split in SPLITS for t in transcripts[split]])
    return {
        "hours": {
            split: round(
                sum(s for u, s in zip(utterances, seconds) if u.speaker.split == split) / SECONDS_PER_HOUR,
                HOURS_DECIMALS,
            )
            for split in SPLITS
        },
        "utterances": {split: len(transcripts[split]) for split in SPLITS},
        "speakers": {split: len({u.speaker for u in utterances if u.speaker.split == split}) for split in SPLITS},
        "voices": len({u.speaker.voice for u in utterances}),
        "vocabulary_size": len(all_words),
        "train_vocabulary_size": len(train_words),
        "eval_words_unseen_in_train": len(all_words - train_words),
        "build_seconds": round(build_seconds, 1),
    }
