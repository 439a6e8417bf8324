"""Our greedy decoder against torchaudio's RNNTBeamSearch at beam 1, on the same model and utterances.

The evaluation decodes every model with omni.asr.decode's greedy search (batched for full
utterances, one utterance at a time streaming) and uses torchaudio's RNNTBeamSearch for the beam
modes. At beam 1 the two searches should agree; ours must be no slower (target: throughput ratio
>= 1.0) or the pipeline would be better off calling torchaudio's. Both decode the same utterances
one at a time (batch 1, like for like), full-utterance and streaming, in alternating order round by
round; the ratio is the median over rounds of beam-1 seconds / greedy seconds. Also printed: the
batched greedy (the pipeline's greedy-full, --batch utterances per batch) against beam 1.

Where the two disagree, each utterance is explained: both hypotheses' log P(y | x) under the model
(the RNN-T probability summed over all alignments, -rnnt_loss, of the full-utterance forward, also
for the streaming pair) and word errors. Greedy picks the most probable symbol frame by frame along
ONE alignment; torchaudio's beam search, even at width 1, scores a hypothesis by the log-sum over the
alignments that reach it (it merges equal prefixes) and ranks the finished ones by score / length.
So a disagreement is not a bug of either search when the beam-1 hypothesis is the more probable one
under the model.

    .venv/bin/python benchmarks/decoder.py [--model results/models/dense/seed1234/dense/model.pt]
        [--data results/data] [--split test-other] [--utterances 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import pandas as pd
import torch
from torchaudio.functional import rnnt_loss

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omni import job_params  # noqa: E402
from omni.asr.evaluate import decode_split  # noqa: E402
from omni.asr.frontend import Frontend  # noqa: E402
from omni.asr.model import blank_id, load_model  # noqa: E402
from omni.config import load_config  # noqa: E402
from omni.data.batches import UtteranceSet  # noqa: E402
from omni.data.features import LogMel, load_feature_stats  # noqa: E402
from omni.data.manifest import read_manifest  # noqa: E402
from omni.data.tokenizer import Tokenizer  # noqa: E402

PAIRS = {"full": ("greedy-full", "beam-full"), "streaming": ("greedy-streaming", "beam-streaming")}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--model", default="results/models/dense/seed1234/dense/model.pt")
    parser.add_argument("--data", default="results/data", help="the study's data folder (manifests, stats, tokenizer)")
    parser.add_argument("--split", default="test-other")
    parser.add_argument("--utterances", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16, help="utterances per batch of the batched greedy")
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    data = Path(args.data)
    model, artefact = load_model(args.model)
    model_config = artefact["model_config"]
    frontend = Frontend(
        LogMel.from_section(job_params.logmel(config)),
        load_feature_stats(data / "feature_stats.json"),
        model_config["right_context_length"],
    )
    tokenizer = Tokenizer(data / "tokenizer.model")
    manifest = read_manifest(data / "manifests" / f"{args.split}.tsv").head(args.utterances)
    utterances = UtteranceSet(manifest, tokenizer, config["data"]["sample_rate"], cache_audio=True)
    device = torch.device("cpu")

    def decode(mode: str, batch: int = 1) -> tuple[pd.DataFrame, float]:
        table, summary = decode_split(
            model, model_config, frontend, utterances, tokenizer, mode, 1, batch, device, description=mode
        )
        return table, summary["decode_seconds"]

    print(f"{args.model}: {len(utterances)} {args.split} utterances, {args.threads} thread(s), {args.rounds} rounds")
    for name, (greedy_mode, beam_mode) in PAIRS.items():
        ratios, same = [], None
        for round_ in range(args.rounds):
            if round_ % 2:
                (beam, beam_s), (greedy, greedy_s) = decode(beam_mode), decode(greedy_mode)
            else:
                (greedy, greedy_s), (beam, beam_s) = decode(greedy_mode), decode(beam_mode)
            ratios.append(beam_s / greedy_s)
        same = int((greedy["hypothesis"] == beam["hypothesis"]).sum())
        print(
            f"{name:9s}: beam-1 / greedy time {statistics.median(ratios):.2f}x (target >= 1.0); "
            f"identical hypotheses {same}/{len(utterances)}"
        )
        explain_disagreements(greedy, beam, model, model_config, frontend, utterances, tokenizer)
    batched = statistics.median(
        decode(PAIRS["full"][1])[1] / decode(PAIRS["full"][0], args.batch)[1] for _ in range(args.rounds)
    )
    print(f"full, greedy batched by {args.batch}: beam-1 / greedy time {batched:.2f}x")


def explain_disagreements(
    greedy: pd.DataFrame,
    beam: pd.DataFrame,
    model: torch.nn.Module,
    model_config: dict,
    frontend: Frontend,
    utterances: UtteranceSet,
    tokenizer: Tokenizer,
) -> None:
    """Per utterance the searches disagree on: log P(hypothesis | audio) of each and their word errors."""
    differ = greedy.index[greedy["hypothesis"] != beam["hypothesis"]]
    if len(differ) == 0:
        return
    position = {utt_id: index for index, utt_id in enumerate(utterances.utt_ids)}
    errors = ["substitutions", "deletions", "insertions"]
    beam_more_probable = 0
    print(f"  {'utterance':>22s}  {'log P greedy':>12s}  {'log P beam-1':>12s}  errors greedy / beam-1")
    for row in differ:
        batch = utterances.collate([position[greedy.at[row, "utt_id"]]])
        feats, lengths = frontend.features(batch.waveforms, batch.wave_lengths)
        greedy_logp, beam_logp = (
            log_probability(
                model,
                model_config,
                frontend.pad_right_context(feats),
                lengths,
                tokenizer.encode(table.at[row, "hypothesis"]),
            )
            for table in (greedy, beam)
        )
        beam_more_probable += beam_logp > greedy_logp
        print(
            f"  {greedy.at[row, 'utt_id']:>22s}  {greedy_logp:12.2f}  {beam_logp:12.2f}  "
            f"{int(greedy.loc[row, errors].sum())} / {int(beam.loc[row, errors].sum())}"
        )
    print(
        f"  beam-1's hypothesis is the more probable under the model on {beam_more_probable}/{len(differ)} "
        f"of them; word errors there: greedy {int(greedy.loc[differ, errors].to_numpy().sum())}, "
        f"beam-1 {int(beam.loc[differ, errors].to_numpy().sum())}"
    )


@torch.inference_mode()
def log_probability(
    model: torch.nn.Module, model_config: dict, inputs: torch.Tensor, lengths: torch.Tensor, tokens: list[int]
) -> float:
    """log P(tokens | one utterance's features [1, T + rc, D]), summed over every alignment."""
    blank = blank_id(model_config)
    targets = torch.tensor([tokens], dtype=torch.int32)
    target_lengths = torch.tensor([len(tokens)], dtype=torch.int32)
    prepended = torch.nn.functional.pad(targets, (1, 0), value=blank)
    logits, logit_lengths, _, _ = model(inputs, lengths, prepended, target_lengths + 1)
    return -float(rnnt_loss(logits, targets, logit_lengths.int(), target_lengths, blank=blank, reduction="sum"))


if __name__ == "__main__":
    main()
