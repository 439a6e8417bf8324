"""A minimal ctypes binding to libespeak-ng from the `espeakng-loader` wheel.

The wheel ships the shared library and its data but no Python API, and the usual Python
wrappers need a system espeak-ng; binding the handful of C functions we use keeps the
embedded corpus installable from PyPI alone. libespeak-ng keeps global state and is not
thread-safe, so each process initialises one engine (`engine()`) and uses it serially.
"""
from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import espeakng_loader
import numpy as np

# Constants of speak_lib.h (espeak-ng 1.52).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_BUFFER_MS = 0  # 0 = the library's default chunk length for callbacks
_INIT_OPTIONS = 0
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_EE_OK = 0
_VARIANT_LANGUAGE = b"variant"
_VARIANT_SEPARATOR = "+"

RATE_RANGE_WPM = (80, 450)  # what espeak_SetParameter(espeakRATE) accepts
PITCH_RANGE = (0, 100)


class EspeakError(RuntimeError):
    """libespeak-ng refused a call, or a requested voice does not exist."""


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # not a C string: see _languages
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@dataclass(frozen=True)
class VoiceInfo:
    """One entry of espeak_ListVoices: `key` is what goes before (or after) the `+`."""

    key: str
    name: str
    languages: tuple[str, ...]


def _languages(address: int) -> tuple[str, ...]:
    """espeak packs languages as repeated <priority byte><name>\\0, ended by a zero priority."""
    names = []
    while ctypes.c_ubyte.from_address(address).value != 0:
        name = ctypes.string_at(address + 1)
        names.append(name.decode())
        address += 1 + len(name) + 1
    return tuple(names)


def _voice_list(pointer: ctypes.POINTER) -> list[VoiceInfo]:
    voices = []
    index = 0
    while pointer[index]:
        voice = pointer[index].contents
        identifier = voice.identifier.decode()
        voices.append(
            VoiceInfo(key=identifier.rsplit("/", 1)[-1], name=voice.name.decode(), languages=_languages(voice.languages))
        )
        index += 1
    return voices


class Espeak:
    """The process-wide espeak-ng engine in synchronous mode, collecting int16 samples."""

    def __init__(self) -> None:
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._declare()
        data_path = espeakng_loader.get_data_path().encode()
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data_path, _INIT_OPTIONS)
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed ({rate}) with data at {data_path.decode()}")
        self.sample_rate: int = rate
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._collect)  # kept referenced: C holds the pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    def _declare(self) -> None:
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))

    def _collect(self, wav: ctypes.POINTER, num_samples: int, _events: int) -> int:
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0  # 0 = keep synthesising

    def voices(self) -> list[VoiceInfo]:
        """Language voices (espeak lists variants only when asked for them by language)."""
        return _voice_list(self._lib.espeak_ListVoices(None))

    def variants(self) -> list[VoiceInfo]:
        spec = _Voice(languages=_VARIANT_LANGUAGE)
        return _voice_list(self._lib.espeak_ListVoices(ctypes.byref(spec)))

    def voice_names(self) -> set[str]:
        """Every `base` or `base+variant` spelling that `check_voices` accepts."""
        bases = {v.key.lower() for v in self.voices()} | {lang for v in self.voices() for lang in v.languages}
        return bases | {f"{base}{_VARIANT_SEPARATOR}{variant.key}" for base in bases for variant in self.variants()}

    def check_voices(self, names: Iterable[str], config_key: str) -> None:
        """Fail before synthesis: espeak silently falls back to a default for unknown names."""
        bases = {v.key.lower() for v in self.voices()} | {lang for v in self.voices() for lang in v.languages}
        variants = {v.key for v in self.variants()}
        for name in names:
            base, _, variant = name.partition(_VARIANT_SEPARATOR)
            if base.lower() not in bases or (variant and variant not in variants):
                raise EspeakError(
                    f"config key '{config_key}': voice '{name}' does not exist in espeak-ng; use "
                    f"<language>[+<variant>] with a language such as {sorted(b for b in bases if b.startswith('en'))} "
                    f"and a variant from {sorted(variants)}"
                )

    def synthesize(self, text: str, voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
        """Speak `text` and return mono int16 samples at `self.sample_rate`."""
        self._check(self._lib.espeak_SetVoiceByName(voice.encode()), f"set voice '{voice}'")
        self._check(self._lib.espeak_SetParameter(_PARAM_RATE, int(rate_wpm), 0), f"set rate {rate_wpm}")
        self._check(self._lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0), f"set pitch {pitch}")
        encoded = text.encode()
        buffer = ctypes.create_string_buffer(encoded)
        self._chunks = []
        self._check(
            self._lib.espeak_Synth(buffer, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None),
            f"synthesise {text!r}",
        )
        self._check(self._lib.espeak_Synchronize(), "synchronise")
        chunks, self._chunks = self._chunks, []
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    @staticmethod
    def _check(status: int, action: str) -> None:
        if status != _EE_OK:
            raise EspeakError(f"espeak-ng could not {action} (status {status})")


@functools.cache
def engine() -> Espeak:
    """One engine per process: a second espeak_Initialize would reset the first."""
    return Espeak()


def data_path() -> Path:
    return Path(espeakng_loader.get_data_path())
