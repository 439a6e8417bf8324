"""Transcript normalisation as the configuration says (config `data.text`), the same for every corpus.

A corpus's transcripts come in its own conventions (mixed case, punctuation, digits, symbols); the
model's output units are whatever the training transcripts hold, so what is kept has to be decided,
not assumed. In order: the user's replacement table (literal strings, longest first: "%" -> " PERCENT ",
"2" -> " TWO "), case folding, punctuation (Unicode category P) to spaces except the characters the
alphabet keeps (the apostrophe of "DON'T"), whitespace collapsed. What is then outside the alphabet
(digits and symbols nobody mapped) is not guessed at: the utterance is rejected naming the characters.
LibriSpeech's and the synthetic corpus's transcripts (upper-case words and apostrophes) pass unchanged.
"""

from __future__ import annotations

import csv
import functools
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CASES = ("upper", "lower", "keep")
_WHITESPACE = re.compile(r"\s+")
# data.alphabet: null keeps the letters of any script (and their combining marks), the apostrophe and the space
_OPEN_CATEGORIES = ("L", "M")
_OPEN_EXTRA = "' "


class TextConfigError(ValueError):
    """The normalisation's configuration (its replacement table) cannot be used."""


@dataclass(frozen=True)
class TextNormaliser:
    """`alphabet` None: any letter, mark, apostrophe or space is a unit the tokenizer may learn."""

    case: str
    strip_punctuation: bool
    replacements: tuple[tuple[str, str], ...]
    alphabet: str | None

    @classmethod
    def from_section(cls, data: Mapping[str, Any]) -> TextNormaliser:
        """From the manifest rule's section (omni.job_params.manifest): its `text` entry holds the
        replacement pairs themselves, so an edited table reruns the manifests."""
        text = data["text"]
        return cls(text["case"], text["strip_punctuation"], tuple(map(tuple, text["replacements"])), data["alphabet"])

    def __call__(self, transcript: str) -> str:
        for source, target in self.replacements:
            transcript = transcript.replace(source, target)
        if self.case == "upper":
            transcript = transcript.upper()
        elif self.case == "lower":
            transcript = transcript.lower()
        if self.strip_punctuation:
            transcript = "".join(" " if self._is_punctuation(char) else char for char in transcript)
        return _WHITESPACE.sub(" ", transcript).strip()

    def outside(self, transcript: str) -> list[str]:
        """The characters of a normalised transcript the alphabet does not hold, sorted."""
        return sorted({char for char in transcript if not self._in_alphabet(char)})

    def _is_punctuation(self, char: str) -> bool:
        return _category(char).startswith("P") and not self._in_alphabet(char)

    def _in_alphabet(self, char: str) -> bool:
        if self.alphabet is not None:
            return char in self.alphabet
        return char in _OPEN_EXTRA or _category(char).startswith(_OPEN_CATEGORIES)


@functools.cache
def _category(char: str) -> str:
    """Unicode's category of a character, remembered: a corpus has few distinct ones and many of each."""
    return unicodedata.category(char)


def read_replacements(path: str | os.PathLike) -> tuple[tuple[str, str], ...]:
    """A two-column TSV (`from`, `to`; no header, no quoting: a tab separates), longest `from` first so
    "10" is replaced before "1"."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise TextConfigError(f"config key 'data.text.replacements': {path} cannot be read ({error})") from error
    pairs: dict[str, str] = {}
    for number, fields in enumerate(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
        if not fields:
            continue
        if len(fields) != 2 or not fields[0]:
            raise TextConfigError(
                f"{path}:{number}: a replacement line is `<from><TAB><to>`, got {lines[number - 1]!r}"
            )
        if fields[0] in pairs:
            raise TextConfigError(f"{path}:{number}: {fields[0]!r} is replaced twice")
        pairs[fields[0]] = fields[1]
    return tuple(sorted(pairs.items(), key=lambda pair: (-len(pair[0]), pair[0])))
