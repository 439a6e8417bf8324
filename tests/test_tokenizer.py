"""Sentencepiece tokenizer: id convention, round trip, byte-identical retraining, vocabulary errors."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from omni.data.manifest import MANIFEST_COLUMNS
from omni.data.tokenizer import UNK_ID, Tokenizer, TokenizerError, train_tokenizer

REPO = Path(__file__).resolve().parent.parent
VOCAB = 40
SEED = 1234
WORDS = (
    "THE QUICK BROWN FOX JUMPS OVER A LAZY DOG WHILE SIX WIZARDS VEX IT AND "
    "PACK MY BOX WITH FIVE DOZEN LIQUOR JUGS DON'T STOP"
).split()
# Deterministic sentences covering every letter, the apostrophe and a range of lengths.
TRANSCRIPTS = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(3 + i % 8)) for i in range(120)]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tok") / "tokenizer.model"
    train_tokenizer(TRANSCRIPTS, VOCAB, "unigram", path, SEED)
    return path


def test_ids_follow_the_rnnt_convention(model_path: Path) -> None:
    tokenizer = Tokenizer(model_path)
    assert tokenizer.vocab_size == VOCAB
    assert tokenizer.blank_id == VOCAB
    ids = [i for text in TRANSCRIPTS for i in tokenizer.encode(text)]
    assert UNK_ID not in ids  # every training character is covered
    assert 0 < min(ids) and max(ids) < VOCAB


@pytest.mark.parametrize("text", [TRANSCRIPTS[0], TRANSCRIPTS[-1], "DOZEN WIZARDS DON'T VEX", "A"])
def test_round_trip(model_path: Path, text: str) -> None:
    tokenizer = Tokenizer(model_path)
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_decode_refuses_the_blank(model_path: Path) -> None:
    tokenizer = Tokenizer(model_path)
    with pytest.raises(TokenizerError, match="blank"):
        tokenizer.decode([1, tokenizer.blank_id])


def test_char_model_has_one_piece_per_symbol(tmp_path: Path) -> None:
    """vocab_size only caps a char model: the pieces are unk, the word marker and every symbol."""
    path = tmp_path / "char.model"
    train_tokenizer(TRANSCRIPTS, 64, "char", path, SEED)
    tokenizer = Tokenizer(path)
    symbols = set("".join(TRANSCRIPTS).replace(" ", ""))
    assert tokenizer.vocab_size == len(symbols) + 2
    text = "DOZEN WIZARDS DON'T VEX"
    assert len(tokenizer.encode(text)) == len(text) + 1  # a word marker per word, a piece per letter
    assert tokenizer.decode(tokenizer.encode(text)) == text


@pytest.mark.parametrize("model_type", ["char", "unigram", "bpe"])
def test_same_inputs_give_identical_model_bytes(tmp_path: Path, model_type: str) -> None:
    first, second = tmp_path / "a.model", tmp_path / "b.model"
    train_tokenizer(TRANSCRIPTS, VOCAB, model_type, first, SEED)
    train_tokenizer(TRANSCRIPTS, VOCAB, model_type, second, SEED)
    assert first.read_bytes() == second.read_bytes()


def test_too_large_vocabulary_names_the_key_and_the_maximum(tmp_path: Path) -> None:
    out = tmp_path / "t.model"
    with pytest.raises(TokenizerError, match=r"tokenizer\.vocab_size = 5000 .* the most .* is \d+"):
        train_tokenizer(TRANSCRIPTS, 5000, "unigram", out, SEED)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_tokenizer_rule_trains_on_the_manifest_transcripts(tmp_path: Path) -> None:
    manifest = tmp_path / "train.tsv"
    rows = [[f"1-2-{i}", f"/a/{i}.flac", 1.0, 16000, 16000, text, "1", 0] for i, text in enumerate(TRANSCRIPTS)]
    pd.DataFrame(rows, columns=MANIFEST_COLUMNS).to_csv(manifest, sep="\t", index=False)
    smk = SimpleNamespace(
        input=SimpleNamespace(manifest=str(manifest)),
        output=SimpleNamespace(model=str(tmp_path / "tokenizer.model")),
        params=SimpleNamespace(tokenizer={"vocab_size": VOCAB, "model_type": "unigram", "seed": SEED}),
        log=[str(tmp_path / "tokenizer.log")],
        threads=1,
    )
    runpy.run_path(str(REPO / "workflow_scripts" / "train_tokenizer.py"), init_globals={"snakemake": smk})
    reference = tmp_path / "reference.model"
    train_tokenizer(TRANSCRIPTS, VOCAB, "unigram", reference, SEED)
    assert (tmp_path / "tokenizer.model").read_bytes() == reference.read_bytes()
