"""The WER and CER every table cell comes from (omni.asr.evaluate), against cases worked by hand: the
minimum edit alignment's substitutions, deletions and insertions, empty references and hypotheses, and
corpus WER pooled over words (not a mean of per-utterance rates)."""

from __future__ import annotations

import pandas as pd
import pytest

from omni.asr.evaluate import UTTERANCE_COLUMNS, ErrorCounts, count_errors, score_hypotheses, summarize


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        # identical: no error; 3 words, 5 characters (the 2 spaces count)
        ("A B C", "A B C", ErrorCounts(0, 0, 0, 3, 0, 5)),
        # one word replaced: 1 substitution; 1 character
        ("A B C", "A X C", ErrorCounts(1, 0, 0, 3, 1, 5)),
        # one word missing: 1 deletion; "A B C" -> "A C" drops "B " (2 characters)
        ("A B C", "A C", ErrorCounts(0, 1, 0, 3, 2, 5)),
        # one word extra: 1 insertion against 2 reference words; 2 characters (" C")
        ("A B", "A B C", ErrorCounts(0, 0, 1, 2, 2, 3)),
        # "A B C D" -> "X A B": insert X, keep A B, delete C D = 3 edits; every all-substitution path costs 4.
        # characters: A->X, B->A, C->B, delete " D" = 5 of 7 (inserting "X " and deleting " C D" costs 6)
        ("A B C D", "X A B", ErrorCounts(0, 2, 1, 4, 5, 7)),
        # a word split in two: 1 substitution + 1 insertion; characters: one inserted space
        ("HOTDOG", "HOT DOG", ErrorCounts(1, 0, 1, 1, 1, 6)),
        # nothing recognised: every reference word deleted, every character
        ("A B C", "", ErrorCounts(0, 3, 0, 3, 5, 5)),
        # an empty reference: every hypothesis word inserted, no reference words
        ("", "A B", ErrorCounts(0, 0, 2, 0, 3, 0)),
        ("", "", ErrorCounts(0, 0, 0, 0, 0, 0)),
    ],
)
def test_error_counts_match_the_hand_worked_alignment(reference: str, hypothesis: str, expected: ErrorCounts) -> None:
    assert count_errors(reference, hypothesis) == expected


def test_corpus_wer_pools_errors_over_words_not_utterance_rates() -> None:
    """One 1-word utterance wholly wrong, one 9-word utterance right: corpus WER 1/10, where the mean of
    per-utterance rates would say 1/2. CER pools characters the same way: YES -> NO is 3 edits of 3 + 17."""
    table = score_hypotheses(["u2", "u1"], ["A B C D E F G H I", "YES"], ["A B C D E F G H I", "NO"])
    assert list(table.columns) == UTTERANCE_COLUMNS
    assert list(table["utt_id"]) == ["u1", "u2"]  # sorted by id, whatever the decode order
    assert table.loc[0, "substitutions"] == 1 and table.loc[0, "ref_words"] == 1
    summary = summarize(table)
    assert summary == {"wer": pytest.approx(0.1), "cer": pytest.approx(3 / 20), "utterances": 2, "words": 10}


def test_insertions_can_take_wer_past_one() -> None:
    table = score_hypotheses(["u"], ["A"], ["B C D"])  # 1 substitution + 2 insertions for 1 word
    assert summarize(table)["wer"] == pytest.approx(3.0)


def test_a_split_without_reference_words_scores_its_insertions_against_one() -> None:
    """No reference word at all (every transcript empty, which the manifest never lets through): the rate
    is not divided by zero; it counts the errors as if against one word, so it is never silently 0."""
    table = pd.DataFrame([["u", "", "A B", 0, 0, 2, 0, 3, 0]], columns=UTTERANCE_COLUMNS)
    assert summarize(table)["wer"] == 2.0 and summarize(table)["words"] == 0
