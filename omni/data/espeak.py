"""A minimal ctypes binding to libespeak-ng from the `espeakng-loader` wheel.

The wheel ships the shared library and its data but no Python API, and the usual Python
wrappers need a system espeak-ng; binding the handful of C functions we use keeps the
embedded corpus installable from PyPI alone.

Reproducibility: libespeak-ng keeps synthesis state in C statics that neither
espeak_Terminate nor a second espeak_Initialize resets (pitch-flutter phase, gain control,
breath filters), so the same call gives different samples depending on what the process said
before. `synthesize` therefore loads a private copy of the library for every utterance and
unloads it afterwards (about 10 ms), so its output depends on its arguments alone. A copy is
needed because the dynamic loader shares one instance per file, and the catalogue engine used
for listing voices may hold the wheel's file open.
"""

from __future__ import annotations

import _ctypes
import contextlib
import ctypes
import functools
import hashlib
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import espeakng_loader
import numpy as np

from omni.atomic import atomic_path

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
_PRIVATE_COPY_PREFIX = "omni-espeak-"

RANDOM_SEED = 0
"""espeak's own generator and libc's rand() (which it shares with the process) are reset to
this before every utterance: breathy variants and Klatt voices draw noise from them."""
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


def _voice_list(pointer: ctypes._Pointer[ctypes._Pointer[_Voice]]) -> list[VoiceInfo]:
    voices = []
    index = 0
    while pointer[index]:
        voice = pointer[index].contents
        identifier = voice.identifier.decode()
        key = identifier.rsplit("/", 1)[-1]
        voices.append(VoiceInfo(key=key, name=voice.name.decode(), languages=_languages(voice.languages)))
        index += 1
    return voices


class Espeak:
    """One loaded instance of libespeak-ng in synchronous mode, collecting int16 samples."""

    def __init__(self, library_path: str | Path) -> None:
        self._lib = ctypes.CDLL(str(library_path))
        self._libc = ctypes.CDLL(None)  # the process's C library, whose rand() espeak uses
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
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_Terminate.argtypes = []
        lib.espeak_Terminate.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        self._libc.srand.argtypes = [ctypes.c_uint]
        self._libc.srand.restype = None

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], num_samples: int, _events: int) -> int:
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0  # 0 = keep synthesising

    def close(self) -> None:
        """Terminate and unload, so the next load of this file starts from pristine statics."""
        self._lib.espeak_Terminate()
        _ctypes.dlclose(self._lib._handle)

    def voices(self) -> list[VoiceInfo]:
        """Language voices (espeak lists variants only when asked for them by language)."""
        return _voice_list(self._lib.espeak_ListVoices(None))

    def variants(self) -> list[VoiceInfo]:
        """Voice variants (`voices/!v`), the part after `+`; their names are case-sensitive files."""
        language = ctypes.create_string_buffer(_VARIANT_LANGUAGE)  # a plain C string in a query
        spec = _Voice(languages=ctypes.cast(language, ctypes.c_void_p))
        return _voice_list(self._lib.espeak_ListVoices(ctypes.byref(spec)))

    def speak(self, text: str, voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
        """Mono int16 samples at `self.sample_rate`."""
        self._check(self._lib.espeak_SetVoiceByName(voice.encode()), f"set voice '{voice}'")
        self._check(self._lib.espeak_SetParameter(_PARAM_RATE, int(rate_wpm), 0), f"set rate {rate_wpm}")
        self._check(self._lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0), f"set pitch {pitch}")
        self._lib.espeak_ng_SetRandSeed(RANDOM_SEED)
        self._libc.srand(RANDOM_SEED)
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
def _catalogue() -> Espeak:
    """The wheel's own library, kept loaded for voice listings only (never for synthesis)."""
    return Espeak(espeakng_loader.get_library_path())


@functools.cache
def _private_library() -> Path:
    """A content-addressed copy of the library in the temp dir, shared by processes and runs."""
    source = Path(espeakng_loader.get_library_path())
    content = source.read_bytes()
    target = Path(tempfile.gettempdir()) / f"{_PRIVATE_COPY_PREFIX}{hashlib.sha256(content).hexdigest()[:16]}.so"
    if not target.exists():
        with atomic_path(target) as partial:  # concurrent writers race harmlessly: same bytes
            partial.write_bytes(content)
    return target


@contextlib.contextmanager
def fresh_engine() -> Iterator[Espeak]:
    """An engine whose C state has never synthesised anything."""
    engine = Espeak(_private_library())
    try:
        yield engine
    finally:
        engine.close()


def synthesize(text: str, voice: str, rate_wpm: int, pitch: int) -> tuple[np.ndarray, int]:
    """Speak `text`; return (int16 samples, sample rate), a pure function of the arguments."""
    with fresh_engine() as engine:
        return engine.speak(text, voice, rate_wpm, pitch), engine.sample_rate


def list_voices() -> list[VoiceInfo]:
    return _catalogue().voices()


def list_variants() -> list[VoiceInfo]:
    return _catalogue().variants()


def base_names() -> set[str]:
    """Lower-cased names espeak_SetVoiceByName resolves: voice file names and their languages."""
    voices = list_voices()
    return {v.key.lower() for v in voices} | {language for v in voices for language in v.languages}


def check_voices(names: Iterable[str], config_key: str) -> None:
    """Fail before synthesis: espeak silently ignores an unknown variant."""
    bases = base_names()
    variants = {v.key for v in list_variants()}
    for name in names:
        base, separator, variant = name.partition(_VARIANT_SEPARATOR)
        if base.lower() not in bases or (separator and variant not in variants):
            raise EspeakError(
                f"config key '{config_key}': voice '{name}' does not exist in espeak-ng; use "
                f"<language>[+<variant>] with a language such as {sorted(b for b in bases if b.startswith('en'))} "
                f"and a variant from {sorted(variants)}"
            )
