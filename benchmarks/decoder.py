"""Our greedy decoder against torchaudio's RNNTBeamSearch at beam 1, on the same model and utterances.

The evaluation decodes every model with omni.asr.decode's greedy search (batched for full
utterances, one utterance at a time streaming) and uses torchaudio's RNNTBeamSearch for the beam
modes. At beam 1 the two searches should agree; ours must be no slower (target: throughput ratio
>= 1.0) or the pipeline would be better off calling torchaudio's. Both decode the same utterances
one at a time (batch 1, like for like), full-utterance and streaming, in alternating order round by
round; the ratio is the median over rounds of beam-1 seconds / greedy seconds. Also printed: the
batched greedy (the pipeline's greedy-full, --batch utterances per batch) against beam 1.

    .venv/bin/python benchmarks/decoder.py [--model results/models/dense/seed1234/dense/model.pt]
        [--data results/data] [--split test-other] [--utterances 40]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omni import job_params  # noqa: E402
from omni.asr.evaluate import decode_split  # noqa: E402
from omni.asr.frontend import Frontend  # noqa: E402
from omni.asr.model import load_model  # noqa: E402
from omni.config import load_config  # noqa: E402
from omni.data.batches import UtteranceSet  # noqa: E402
from omni.data.features import load_feature_stats  # noqa: E402
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
    frontend = Frontend(job_params.logmel(config), load_feature_stats(data / "feature_stats.json"),
                        model_config["right_context_length"])
    tokenizer = Tokenizer(data / "tokenizer.model")
    manifest = read_manifest(data / "manifests" / f"{args.split}.tsv").head(args.utterances)
    utterances = UtteranceSet(manifest, tokenizer, config["data"]["sample_rate"], cache_audio=True)
    device = torch.device("cpu")

    def decode(mode: str, batch: int = 1) -> tuple[list[str], float]:
        table, summary = decode_split(model, model_config, frontend, utterances, tokenizer, mode, 1, batch, device,
                                      description=mode)
        return table["hypothesis"].tolist(), summary["decode_seconds"]

    print(f"{args.model}: {len(utterances)} {args.split} utterances, {args.threads} thread(s), {args.rounds} rounds")
    for name, (greedy_mode, beam_mode) in PAIRS.items():
        ratios, same = [], None
        for round_ in range(args.rounds):
            if round_ % 2:
                (beam, beam_s), (greedy, greedy_s) = decode(beam_mode), decode(greedy_mode)
            else:
                (greedy, greedy_s), (beam, beam_s) = decode(greedy_mode), decode(beam_mode)
            ratios.append(beam_s / greedy_s)
            same = sum(g == b for g, b in zip(greedy, beam))
        print(f"{name:9s}: beam-1 / greedy time {statistics.median(ratios):.2f}x (target >= 1.0); "
              f"identical hypotheses {same}/{len(utterances)}")
    batched = statistics.median(decode(PAIRS["full"][1])[1] / decode(PAIRS["full"][0], args.batch)[1]
                                for _ in range(args.rounds))
    print(f"full, greedy batched by {args.batch}: beam-1 / greedy time {batched:.2f}x")


if __name__ == "__main__":
    main()
