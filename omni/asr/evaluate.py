"""Evaluate one model on one split in every configured decode mode; keep per-utterance error
counts (significance tests resample them) and a summary (WER, CER, speed)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jiwer
import pandas as pd
import torch
from torchaudio.models import RNNTBeamSearch
from tqdm import tqdm

from omni.asr.decode import StreamingChunks, beam_full, beam_streaming, greedy_full, greedy_streaming
from omni.asr.frontend import Frontend
from omni.asr.model import ModelConfig, blank_id
from omni.data.batches import UtteranceSet, eval_batches
from omni.data.tokenizer import Tokenizer

UTTERANCE_COLUMNS = [
    "utt_id",
    "reference",
    "hypothesis",
    "substitutions",
    "deletions",
    "insertions",
    "ref_words",
    "char_errors",
    "ref_chars",
]


@dataclass
class ErrorCounts:
    substitutions: int
    deletions: int
    insertions: int
    ref_words: int
    char_errors: int
    ref_chars: int


def count_errors(reference: str, hypothesis: str) -> ErrorCounts:
    words = jiwer.process_words(reference, hypothesis)
    chars = jiwer.process_characters(reference, hypothesis)
    return ErrorCounts(
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        ref_words=words.hits + words.substitutions + words.deletions,
        char_errors=chars.substitutions + chars.deletions + chars.insertions,
        ref_chars=chars.hits + chars.substitutions + chars.deletions,
    )


def score_hypotheses(utt_ids: list[str], references: list[str], hypotheses: list[str]) -> pd.DataFrame:
    rows = []
    for utt_id, ref, hyp in zip(utt_ids, references, hypotheses):
        counts = count_errors(ref, hyp)
        rows.append(
            [
                utt_id,
                ref,
                hyp,
                counts.substitutions,
                counts.deletions,
                counts.insertions,
                counts.ref_words,
                counts.char_errors,
                counts.ref_chars,
            ]
        )
    return pd.DataFrame(rows, columns=UTTERANCE_COLUMNS).sort_values("utt_id", ignore_index=True)


def summarize(table: pd.DataFrame) -> dict[str, float]:
    word_errors = table[["substitutions", "deletions", "insertions"]].to_numpy().sum()
    return {
        "wer": float(word_errors / max(1, table["ref_words"].sum())),
        "cer": float(table["char_errors"].sum() / max(1, table["ref_chars"].sum())),
        "utterances": int(len(table)),
        "words": int(table["ref_words"].sum()),
    }


def decode_split(
    model: torch.nn.Module,
    model_config: ModelConfig,
    frontend: Frontend,
    utterances: UtteranceSet,
    tokenizer: Tokenizer,
    decode: str,
    beam_width: int | None,
    batch_size: int,
    device: torch.device,
    description: str,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Decode every utterance in one mode ('greedy-full', 'beam-streaming', ...); a beam decode
    needs `beam_width`, a greedy one ignores it."""
    search_kind = decode.split("-")[0]
    width = 0  # the beam width; a greedy decode has none
    if search_kind == "beam":
        if beam_width is None:
            raise ValueError(f"decode {decode!r} needs a beam width (config key 'evaluate.beam_width')")
        width = beam_width
    blank = blank_id(model_config)
    chunks = StreamingChunks(model_config["segment_length"], model_config["right_context_length"])
    search = RNNTBeamSearch(model, blank) if search_kind == "beam" else None
    ids, refs, hyps = [], [], []
    audio_seconds = 0.0
    start = time.perf_counter()
    progress = tqdm(total=len(utterances), desc=f"{description} {decode}", dynamic_ncols=True, mininterval=2.0)
    for batch in eval_batches(utterances, batch_size):
        batch = batch.to(device)
        feats, lengths = frontend.features(batch.waveforms, batch.wave_lengths)
        if decode == "greedy-full":
            token_lists = greedy_full(model, frontend.pad_right_context(feats), lengths, blank)
        else:
            token_lists = []
            for row in range(feats.size(0)):
                length = int(lengths[row])
                one = feats[row : row + 1, :length]
                if decode == "greedy-streaming":
                    token_lists.append(greedy_streaming(model, one, length, blank, chunks))
                elif decode == "beam-full":
                    token_lists.append(beam_full(search, frontend.pad_right_context(one), length, width, blank))
                else:
                    token_lists.append(beam_streaming(search, model, one, length, width, blank, chunks))
        ids += batch.utt_ids
        refs += batch.transcripts
        hyps += [tokenizer.decode(tokens) for tokens in token_lists]
        audio_seconds += batch.audio_seconds
        progress.update(len(batch.utt_ids))
    progress.close()
    seconds = time.perf_counter() - start
    table = score_hypotheses(ids, refs, hyps)
    summary = summarize(table)
    summary.update(decode_seconds=seconds, audio_seconds=audio_seconds, rtf=seconds / max(audio_seconds, 1e-9))
    return table, summary


def evaluate_model(
    model: torch.nn.Module,
    model_config: ModelConfig,
    frontend: Frontend,
    utterances: UtteranceSet,
    tokenizer: Tokenizer,
    decodes: list[str],
    beam_width: int | None,
    batch_size: int,
    device: torch.device,
    description: str,
) -> dict[str, tuple[pd.DataFrame, dict[str, float]]]:
    model.eval()
    return {
        decode: decode_split(
            model, model_config, frontend, utterances, tokenizer, decode, beam_width, batch_size, device, description
        )
        for decode in decodes
    }


def model_size_fields(model: torch.nn.Module, masks: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Kept parameters counted exactly from the masks (a dense model keeps everything)."""
    total = sum(p.numel() for p in model.parameters())
    prunable_total = sum(m.numel() for m in masks.values())
    prunable_kept = sum(int(m.sum()) for m in masks.values())
    return {
        "params_total": total,
        "params_kept": total - (prunable_total - prunable_kept),
        "prunable_total": prunable_total,
        "prunable_kept": prunable_kept,
    }
