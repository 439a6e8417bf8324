"""Audio input through soundfile: torchaudio.load needs torchcodec/FFmpeg, which these machines lack."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import soundfile
import torch
import torchaudio

# Probing decodes one sample; integers skip the float conversion.
_PROBE_DTYPE = "int16"
# libsndfile reports this frame count when a header does not declare the stream length.
_UNKNOWN_FRAMES = np.iinfo(np.int64).max


class AudioError(Exception):
    """An audio file that cannot be used; `reason` is the human-readable cause, without the path."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class AudioProbe:
    """What a file's header declares, its last sample proven to be there."""

    num_samples: int
    sample_rate: int
    channels: int


def probe_audio(path: str | os.PathLike) -> AudioProbe:
    """The header, and a seek to the last sample it declares: a truncated FLAC file's header reads
    fine, but the seek fails. Decoding every frame would also find damage inside the stream, at the
    cost of decoding the corpus (hours at 960 h); such a file fails later, in `read_audio`, named."""
    if os.path.getsize(path) == 0:
        raise AudioError(path, "zero-length audio (empty file, 0 bytes)")
    try:
        with soundfile.SoundFile(path) as handle:
            declared = handle.frames
            if declared == _UNKNOWN_FRAMES:  # no length in the header: count by decoding
                declared = len(handle.read(dtype=_PROBE_DTYPE, always_2d=True))
            elif declared > 0 and not _last_sample_reads(handle, declared):
                raise AudioError(
                    path, f"truncated or corrupt audio: the header declares {declared} samples, the last cannot be read"
                )
            probe = AudioProbe(num_samples=declared, sample_rate=handle.samplerate, channels=handle.channels)
    except (soundfile.SoundFileError, OSError, RuntimeError) as error:
        raise AudioError(path, f"unreadable, truncated or corrupt audio ({error})") from error
    return probe


@dataclass(frozen=True)
class AudioSpan:
    """An utterance's samples in its file (a manifest row's `audio_path`, `offset_samples`, `num_samples`):
    a segment of a longer recording is read in place."""

    path: str
    offset: int
    frames: int

    def read(self, target_rate: int, resample: bool) -> torch.Tensor:
        return read_audio(self.path, target_rate, resample, self.offset, self.frames)


def _last_sample_reads(handle: soundfile.SoundFile, declared: int) -> bool:
    try:
        handle.seek(declared - 1)
        return len(handle.read(1, dtype=_PROBE_DTYPE, always_2d=True)) == 1
    except (soundfile.SoundFileError, RuntimeError):
        return False


def read_audio(
    path: str | os.PathLike, target_rate: int, resample: bool, offset: int = 0, frames: int = -1
) -> torch.Tensor:
    """Mono float32 waveform at `target_rate` of `frames` samples from `offset` (the file's rate; -1: to
    the end); anything the model cannot take raises AudioError. Several channels are downmixed to
    their mean (equal weights: a stereo recording of one talker keeps its level; a channel that is
    silent halves it, as a device's mono microphone path would)."""
    try:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True, start=offset, frames=frames)
    except (soundfile.SoundFileError, OSError, RuntimeError) as error:
        raise AudioError(path, f"unreadable or corrupt audio ({error})") from error
    if data.shape[0] == 0:
        raise AudioError(path, "zero-length audio (0 samples)")
    waveform = torch.from_numpy(data[:, 0].copy() if data.shape[1] == 1 else data.mean(axis=1))
    if rate == target_rate:
        return waveform
    if not resample:
        raise AudioError(path, f"sample rate {rate} Hz, expected {target_rate} Hz (config data.resample is false)")
    return torchaudio.functional.resample(waveform, orig_freq=rate, new_freq=target_rate)
