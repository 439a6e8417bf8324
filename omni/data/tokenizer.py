"""Sentencepiece output units for the RNN-T: characters, or subword pieces.

Characters are the default for small corpora: measured on the embedded 2-hour corpus, an
Emformer (or LSTM) encoder trained with CTC reads sentences within 600 steps on characters
but is still at the all-blank plateau after 600 steps on 128 unigram pieces, whose labels are
too rare to learn from so little audio; the RNN-T then falls back on its predictor's language
model. Subword pieces (unigram/bpe) suit LibriSpeech-sized data.

Pieces are ids 0..V-1 with unk = 0 and no bos/eos (an RNN-T needs neither); the model's blank is
id V, so the joiner has V + 1 outputs. Text is used as the manifest holds it (upper-case words for
LibriSpeech and the synthetic corpus) and the identity normaliser keeps decode(encode(x)) == x.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence

import sentencepiece

from omni.atomic import atomic_path

UNK_ID = 0
UNK_SURFACE = "\u2581\u2047\u2581"  # how sentencepiece decodes unk: ' ⁇ ' between word boundaries
_DISABLED = -1
# Sentencepiece log level: warnings and errors only (its info lines are one per training stage).
_SPM_LOG_LEVEL = 1
_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")


class TokenizerError(ValueError):
    """Training or loading a tokenizer failed for a reason the user can fix."""


def train_tokenizer(
    transcripts: Sequence[str], vocab_size: int, model_type: str, out_path: str | os.PathLike, seed: int
) -> None:
    """Train on every transcript (no sentence sampling, one thread, fixed seed): same input, same bytes."""
    if not transcripts:
        raise TokenizerError("no transcripts to train the tokenizer on (is the train manifest empty?)")
    sentencepiece.set_random_generator_seed(seed)
    model = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(transcripts),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            hard_vocab_limit=model_type != "char",  # char: one piece per symbol seen, vocab_size caps it
            character_coverage=1.0,
            normalization_rule_name="identity",
            unk_id=UNK_ID,
            bos_id=_DISABLED,
            eos_id=_DISABLED,
            pad_id=_DISABLED,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            num_threads=1,
            minloglevel=_SPM_LOG_LEVEL,
        )
    except RuntimeError as error:
        too_high = _TOO_HIGH.search(str(error))
        if too_high:
            raise TokenizerError(
                f"config key tokenizer.vocab_size = {vocab_size} is too large for these"
                f" {len(transcripts)} transcripts: the most sentencepiece ({model_type}) can make is"
                f" {too_high.group(2)}"
            ) from error
        raise TokenizerError(
            f"sentencepiece training failed (config keys tokenizer.vocab_size = {vocab_size},"
            f" tokenizer.model_type = {model_type}): {error}"
        ) from error
    with atomic_path(out_path) as tmp:
        tmp.write_bytes(model.getvalue())


class Tokenizer:
    """A trained model, checked to follow the id convention the RNN-T relies on."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        self._sp = sentencepiece.SentencePieceProcessor()
        try:
            self._sp.load(self.path)
        except (OSError, RuntimeError) as error:
            raise TokenizerError(f"cannot load tokenizer model {self.path}: {error}") from error
        ids = (self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if ids != (UNK_ID, _DISABLED, _DISABLED):
            raise TokenizerError(
                f"tokenizer model {self.path} has (unk, bos, eos) ids {ids}, expected"
                f" ({UNK_ID}, {_DISABLED}, {_DISABLED}); train it with omni.data.tokenizer.train_tokenizer"
            )

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    @property
    def blank_id(self) -> int:
        """The RNN-T blank, one past the last piece."""
        return self.vocab_size

    def pieces(self) -> list[str]:
        """Every piece by id as decode() writes it (unk as sentencepiece's ' ⁇ '): what a device needs to
        turn ids into text without sentencepiece."""
        return [UNK_SURFACE if index == UNK_ID else self._sp.id_to_piece(index) for index in range(self.vocab_size)]

    def encode(self, text: str) -> list[int]:
        return self._sp.encode(text, out_type=int)

    def decode(self, ids: Sequence[int]) -> str:
        """Piece ids only: a blank or other id >= vocab_size is a decoder bug, not text."""
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise TokenizerError(
                f"ids {bad[:5]} are outside the {self.vocab_size} pieces of {self.path}"
                f" (blank = {self.blank_id} must be removed before decoding)"
            )
        return self._sp.decode(list(ids))
