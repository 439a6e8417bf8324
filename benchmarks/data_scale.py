"""The data and batching stages at paper scale: a LibriSpeech-960 h-sized training corpus (281,241
utterances), each stage's wall time and peak memory against the targets (10 min, 4 GB, on 2 cores).

The LibriSpeech study runs these on every configuration, on a CPU node (resources.data), and a resumed
training job repeats the batching part before its first step; none of them is exercised at that size
anywhere else (the sample study has 20 utterances). Stages, each in a fresh process, in pipeline order:

  manifest   what rule `manifest` runs for the train split: omni.data.manifest.build_manifest (the tree
             walked, every transcript line checked, every FLAC header read and its last sample sought,
             by --threads prober threads) and the two tables written
  dev split  what rule `split_dev` runs (read, split by speaker, write), on the 281,241-utterance
             manifest: an upper bound (the real dev manifest is 5,567 utterances, 73 speakers)
  plan       a training job's batching from its manifest: read it, tokenize every transcript
             (UtteranceSet), the logits bound's lattices and the first epoch's plan (the job's own
             BatchStream, omni.jobs.training.batch_stream), then one more epoch's plan (what the
             loader does at every epoch boundary)
  resume     a training job resumed halfway through the dense job (train.dense_steps / 2), 3/4 into
             its epoch: the stream built as above, the checkpointed position loaded, and its next batch
             (FLAC decoding and speed perturbation included)

The corpus: a LibriSpeech-layout tree (the three train subsets with their real utterance and speaker
counts, scaled to --utterances) whose FLAC files are symlinks to a pool of --pool real-speech files,
cut from the 20 real utterances of --sample at the quantiles of a LibriSpeech-like length model
(LENGTH_MODEL: mean ~12.3 s, 1-35 s); the validation does its real per-file work on every symlink
(libsndfile writes no seek table, which LibriSpeech's files have: the probe measured the same,
0.34 vs 0.35 ms per file). Transcripts are runs of the sample's real words, WORDS_PER_SECOND per second
of audio. What the figures leave out: the pool sits in the page cache, a real 60 GB corpus on a
network file system does not (the probes' reads then add I/O latency that more --threads can hide).
The tokenizer is trained here on the same words (the rule's train_tokenizer, --vocab pieces: the 20
transcripts' few hundred words cannot make 4,096), while the logits bound counts the config's
tokenizer.vocab_size + 1 symbols, as the paper-scale job would.

Peak memory: each stage's process's maximum resident set size (os.wait4's rusage, the process and its
waited-for children: interpreter, torch and everything the stage holds; the `imports` row is that floor).
Wall time: the whole process (start-up and imports included, as a job pays them), beside its CPU time
(user + system, all threads); the stage's own steps are itemised below the table.
Develop on small sizes; run the full size on an otherwise quiet machine:

    .venv/bin/python benchmarks/data_scale.py [--utterances 281241] [--folder DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import yaml
from snakemake.utils import update_config

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from omni import job_params  # noqa: E402
from omni.asr.model import model_config_from  # noqa: E402
from omni.asr.parallel import Ranks  # noqa: E402
from omni.atomic import write_dataframe, write_json  # noqa: E402
from omni.config import read_yaml, validate_config  # noqa: E402
from omni.data.batches import BatchStream, UtteranceSet, bucket_batches  # noqa: E402
from omni.data.corpus import describe_librispeech  # noqa: E402
from omni.data.dev_split import split_by_speaker  # noqa: E402
from omni.data.manifest import AUDIO_SUFFIX, TRANSCRIPT_SUFFIX, build_manifest, read_manifest  # noqa: E402
from omni.data.tokenizer import Tokenizer, train_tokenizer  # noqa: E402
from omni.jobs.specs import training_spec  # noqa: E402
from omni.jobs.training import TrainingSetup, batch_stream  # noqa: E402
from omni.runtime import set_threads  # noqa: E402

TARGET_S = 600.0
TARGET_MB = 4096.0
STAGES = ("manifest", "dev split", "plan", "resume")
BASELINE = "imports"  # a process that imports what the stages import and loads the config: the floor
# LibriSpeech's training subsets: (name, utterances, speakers); 281,241 utterances, 2,338 speakers in all.
TRAIN_SUBSETS = (
    ("train-clean-100", 28_539, 251),
    ("train-clean-360", 104_014, 921),
    ("train-other-500", 148_688, 1_166),
)
LIBRISPEECH_UTTERANCES = sum(count for _, count, _ in TRAIN_SUBSETS)
LIBRISPEECH_SPEAKERS = sum(count for _, _, count in TRAIN_SUBSETS)
CHAPTERS_PER_SPEAKER = (2, 3)  # drawn per speaker: a transcript file per chapter, as LibriSpeech has
# Utterance lengths, s: (share, kind, a, b) with normal (mean, sd) or uniform (low, high). LibriSpeech cut its
# audio at silences into segments of at most 35 s, most of them near 15 s, with a tail of short ones; mean
# 12.3 s (960 h / 281,241). This model gives mean 12.3 s, quartiles 11.1 / 13.5 / 14.7 s (measured on 30,000
# draws through the pool), clipped to 1-35 s (data.max_duration_s of configs/librispeech.yaml).
LENGTH_MODEL = ((0.68, "normal", 14.2, 1.2), (0.30, "uniform", 1.0, 13.5), (0.02, "uniform", 16.5, 35.0))
SHORTEST_S, LONGEST_S = 1.0, 35.0
WORDS_PER_SECOND = 2.7  # LibriSpeech's training transcripts: ~9.4 M words in 960 h (per utterance +-20 %)
TOKENIZER_SENTENCES = 20_000  # transcripts the benchmark's tokenizer is trained on (a seeded sample)
RESUME_DEPTH = 0.75  # the resumed position: this far into its epoch
MB = 1024.0  # ru_maxrss is in KiB on Linux


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "config.yaml"))
    parser.add_argument(
        "--configfile",
        default=str(REPO / "configs" / "librispeech.yaml"),
        help="layered over --config, as snakemake --configfile does",
    )
    parser.add_argument("--utterances", type=int, default=LIBRISPEECH_UTTERANCES)
    parser.add_argument(
        "--folder",
        help="where the corpus and the stages' outputs go (kept, and reused when it "
        "holds a corpus of the same size); default: a temporary folder",
    )
    parser.add_argument(
        "--sample",
        default=str(REPO.parent / "shared" / "data" / "librispeech-sample"),
        help="the real LibriSpeech utterances the pool is cut from",
    )
    parser.add_argument("--pool", type=int, default=128, help="real-speech FLAC files the corpus points at")
    parser.add_argument(
        "--vocab",
        type=int,
        default=512,
        help="pieces of the benchmark's BPE tokenizer: 512 cut these words into ~3.3 pieces per "
        "second of audio, the rate configs/librispeech.yaml assumes for 4,096 on real text",
    )
    parser.add_argument("--threads", type=int, default=2, help="the stages' threads (the target is on 2 cores)")
    parser.add_argument(
        "--loader-workers",
        type=int,
        default=0,
        help="the resumed loader's DataLoader workers (configs/librispeech.yaml: 5 per GPU on a "
        "48-core node); 0: in-process, peak memory of one process",
    )
    parser.add_argument("--seed", type=int, default=0, help="of the generated corpus")
    parser.add_argument("--stage", choices=(BASELINE, *STAGES), help=argparse.SUPPRESS)  # one stage, in its own process
    args = parser.parse_args()
    if args.utterances < len(TRAIN_SUBSETS):
        parser.error(f"--utterances: at least {len(TRAIN_SUBSETS)} (one per training subset)")
    return args


def paper_config(args: argparse.Namespace) -> dict[str, Any]:
    config = read_yaml(args.config)
    update_config(config, yaml.safe_load(Path(args.configfile).read_text()))  # as --configfile layers it
    return validate_config(config)


# -- the corpus ---------------------------------------------------------------------------------


def draw_lengths(rng: np.random.Generator, count: int) -> np.ndarray:
    """`count` utterance lengths (s) from LENGTH_MODEL."""
    shares = np.array([share for share, *_ in LENGTH_MODEL])
    component = rng.choice(len(LENGTH_MODEL), size=count, p=shares / shares.sum())
    lengths = np.empty(count)
    for index, (_, kind, a, b) in enumerate(LENGTH_MODEL):
        chosen = component == index
        lengths[chosen] = rng.normal(a, b, chosen.sum()) if kind == "normal" else rng.uniform(a, b, chosen.sum())
    return np.clip(lengths, SHORTEST_S, LONGEST_S)


def real_sample(sample: Path) -> tuple[np.ndarray, int, list[str]]:
    """The sample's audio end to end (int16) with its rate, and its transcripts' words in order."""
    audio_files = sorted(sample.rglob(f"*{AUDIO_SUFFIX}"))
    if not audio_files:
        raise SystemExit(f"no {AUDIO_SUFFIX} files under {sample} (see --sample)")
    pieces, rates = zip(*(soundfile.read(path, dtype="int16") for path in audio_files))
    if len(set(rates)) != 1:
        raise SystemExit(f"the sample mixes sample rates {sorted(set(rates))}")
    words = [
        word
        for trans in sorted(sample.rglob(f"*{TRANSCRIPT_SUFFIX}"))
        for line in trans.read_text().splitlines()
        for word in line.split()[1:]
    ]
    return np.concatenate(pieces), rates[0], words


def write_pool(folder: Path, audio: np.ndarray, rate: int, lengths: np.ndarray, rng: random.Random) -> list[Path]:
    """One FLAC file per length, cut from the real audio (cyclically) at a random offset."""
    folder.mkdir(parents=True)
    paths = []
    for index, seconds in enumerate(lengths):
        count = int(round(seconds * rate))
        start = rng.randrange(len(audio))
        samples = np.take(audio, np.arange(start, start + count), mode="wrap")
        paths.append(folder / f"pool-{index:04d}{AUDIO_SUFFIX}")
        soundfile.write(paths[-1], samples, rate, format="FLAC", subtype="PCM_16")
    return paths


def scaled(counts: list[int], total: int) -> list[int]:
    """`counts` scaled to sum to `total` (largest remainders), each at least 1."""
    exact = [count * total / sum(counts) for count in counts]
    floors = [max(1, math.floor(value)) for value in exact]
    order = sorted(range(len(counts)), key=lambda i: exact[i] - floors[i], reverse=True)
    for i in order[: total - sum(floors)]:
        floors[i] += 1
    return floors


def spread(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


def generate_corpus(args: argparse.Namespace, config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The tree, its corpus info record (the build_corpus rule's) and the benchmark's tokenizer."""
    started = time.perf_counter()
    rng, np_rng = random.Random(args.seed), np.random.default_rng(args.seed)
    audio, rate, words = real_sample(Path(args.sample))
    quantiles = (np.arange(args.pool) + 0.5) / args.pool
    pool_lengths = np.quantile(draw_lengths(np_rng, 1_000_000), quantiles)
    pool = write_pool(folder / "pool", audio, rate, pool_lengths, rng)
    root = folder / "LibriSpeech"
    subsets = config["librispeech"]["subsets"]
    for names in subsets.values():  # the other splits' folders, empty: describe_librispeech checks them all
        for name in names:
            (root / name).mkdir(parents=True, exist_ok=True)
    utterances = scaled([count for _, count, _ in TRAIN_SUBSETS], args.utterances)
    speakers = scaled(
        [count for _, _, count in TRAIN_SUBSETS],  # at least two: the dev split needs them
        max(2, round(LIBRISPEECH_SPEAKERS * args.utterances / LIBRISPEECH_UTTERANCES)),
    )
    speaker_ids = iter(rng.sample(range(10, 10_000), sum(speakers)))
    transcripts, seconds = [], 0.0
    for (name, _, _), subset_utterances, subset_speakers in zip(TRAIN_SUBSETS, utterances, speakers):
        for speaker_utterances in spread(subset_utterances, subset_speakers):
            speaker = next(speaker_ids)
            chapters = min(speaker_utterances, rng.choice(CHAPTERS_PER_SPEAKER))
            for chapter, chapter_utterances in zip(
                rng.sample(range(1_000, 300_000), chapters), spread(speaker_utterances, chapters)
            ):
                chapter_dir = root / name / str(speaker) / str(chapter)
                chapter_dir.mkdir(parents=True)
                lines = []
                for number in range(chapter_utterances):
                    utt_id = f"{speaker}-{chapter}-{number:04d}"
                    choice = rng.randrange(args.pool)
                    (chapter_dir / f"{utt_id}{AUDIO_SUFFIX}").symlink_to(pool[choice])
                    count = max(1, round(pool_lengths[choice] * WORDS_PER_SECOND * rng.uniform(0.8, 1.2)))
                    start = rng.randrange(len(words))
                    text = " ".join(words[(start + k) % len(words)] for k in range(count))
                    lines.append(f"{utt_id} {text}")
                    transcripts.append(text)
                    seconds += pool_lengths[choice]
                (chapter_dir / f"{speaker}-{chapter}{TRANSCRIPT_SUFFIX}").write_text("\n".join(lines) + "\n")
    write_json(folder / "corpus.json", describe_librispeech(root, subsets))
    train_tokenizer(
        rng.sample(transcripts, min(len(transcripts), TOKENIZER_SENTENCES)),
        args.vocab,
        "bpe",
        folder / "tokenizer.model",
        args.seed,
    )
    made = {
        "utterances": args.utterances,
        "pool": args.pool,
        "vocab": args.vocab,
        "seed": args.seed,
        "hours": seconds / 3600,
        "speakers": sum(speakers),
        "generate_s": time.perf_counter() - started,
    }
    write_json(folder / "generated.json", made)
    return made


# -- the stages, each run in its own process ------------------------------------------------------


class Steps:
    """Wall time of a stage's steps, in order: [name, seconds] pairs."""

    def __init__(self) -> None:
        self.seconds: list[tuple[str, float]] = []
        self._last = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds.append((name, now - self._last))
        self._last = now


def stage_manifest(args: argparse.Namespace, config: dict[str, Any], folder: Path, steps: Steps) -> dict[str, Any]:
    corpus_info = json.loads((folder / "corpus.json").read_text())
    kept, rejects = build_manifest(corpus_info, "train", job_params.manifest(config), workers=args.threads)
    steps.done("build_manifest")
    write_dataframe(folder / "data" / "rejects.tsv", rejects)
    write_dataframe(folder / "data" / "train.tsv", kept)
    steps.done("write")
    return {"kept": len(kept), "rejected": len(rejects), "hours": float(kept["duration_s"].sum() / 3600)}


def stage_dev_split(args: argparse.Namespace, config: dict[str, Any], folder: Path, steps: Steps) -> dict[str, Any]:
    manifest = read_manifest(folder / "data" / "train.tsv")
    steps.done("read")
    settings = job_params.dev_split(config)
    search, report = split_by_speaker(manifest, settings["search_fraction"], settings["seed"])
    steps.done("split")
    write_dataframe(folder / "data" / "dev-search.tsv", search)
    write_dataframe(folder / "data" / "dev-report.tsv", report)
    steps.done("write")
    return {"search": len(search), "report": len(report)}


def training_stream(
    args: argparse.Namespace, config: dict[str, Any], folder: Path, steps: Steps
) -> tuple[TrainingSetup, UtteranceSet, BatchStream]:
    """The dense job's rank 0 stream, as omni.jobs.training.train_rank builds it."""
    set_threads(args.threads)
    setup = TrainingSetup(
        training=training_spec(
            {**job_params.training(config, "dense", config["seed"]), "loader_workers": args.loader_workers}
        ),
        logmel=job_params.logmel(config),
        augmentation=job_params.augmentation(config),
        model=job_params.model(config),
    )
    manifest = read_manifest(folder / "data" / "train.tsv")
    steps.done("read manifest")
    utterances = UtteranceSet(
        manifest,
        Tokenizer(folder / "tokenizer.model"),
        setup.logmel["sample_rate"],
        cache_audio=setup.training.cache_audio,
    )
    steps.done("tokenize")
    model_config = model_config_from(dict(setup.model), num_symbols=config["tokenizer"]["vocab_size"] + 1)
    world = config["resources"]["train"]["gpus"] if config["device"] == "cuda" else config["train"]["cpu_processes"]
    stream = batch_stream(setup, utterances, model_config, Ranks(rank=0, world=max(1, world)), pin_memory=False)
    steps.done("lattices + epoch 0")
    return setup, utterances, stream


def stage_plan(args: argparse.Namespace, config: dict[str, Any], folder: Path, steps: Steps) -> dict[str, Any]:
    setup, utterances, stream = training_stream(args, config, folder, steps)
    bound = stream.logits_bound
    planned = bucket_batches(
        utterances.num_samples,
        stream.samples_budget,
        stream.seed,
        1,
        stream.sortagrad,
        stream.lattices,
        bound.max_lattice,
    )
    steps.done("epoch 1")
    frames_only = bucket_batches(utterances.num_samples, stream.samples_budget, stream.seed, 1)
    tokens = sum(len(t) for t in utterances.tokens)
    facts = {
        "batches": len(planned),
        "frames_only_batches": len(frames_only),
        "world": stream.world,
        "steps_per_epoch": len(planned) / stream.world,
        "tokens_per_s": tokens / (sum(utterances.num_samples) / setup.logmel["sample_rate"]),
        "max_lattice_elements": max(
            len(b) * max(stream.lattices[i][0] for i in b) * max(stream.lattices[i][1] for i in b) for b in planned
        )
        * bound.symbols,
    }
    steps.done("facts below")
    return facts


def stage_resume(args: argparse.Namespace, config: dict[str, Any], folder: Path, steps: Steps) -> dict[str, Any]:
    batches = json.loads((folder / "stages" / "plan.json").read_text())["result"]["batches"]
    setup, _, stream = training_stream(args, config, folder, steps)
    step = setup.training.steps // 2
    state = {
        "epoch": step * stream.world // batches,
        "position": int(RESUME_DEPTH * batches) // stream.world * stream.world,
        "steps": step,
    }
    stream.load_state_dict(state)
    steps.done("load position")
    batch = next(iter(stream))
    steps.done("next batch")
    return {**state, "batch_utterances": len(batch.utt_ids), "batch_audio_s": batch.audio_seconds}


STAGE_FUNCTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    BASELINE: lambda *_: {},
    "manifest": stage_manifest,
    "dev split": stage_dev_split,
    "plan": stage_plan,
    "resume": stage_resume,
}


def run_stage(args: argparse.Namespace) -> None:
    """In the stage's own process: its steps, timed, written to stages/<stage>.json."""
    steps = Steps()
    folder = Path(args.folder)
    result = STAGE_FUNCTIONS[args.stage](args, paper_config(args), folder, steps)
    write_json(folder / "stages" / f"{args.stage.replace(' ', '-')}.json", {"steps": steps.seconds, "result": result})


def measure(args: argparse.Namespace, folder: Path, stage: str) -> dict[str, Any]:
    """Run one stage in a fresh process: its wall time, its peak RSS, and what it wrote."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--stage", stage, "--folder", str(folder)]
    for option in ("config", "configfile", "threads", "loader_workers"):
        argv += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    started = time.perf_counter()
    pid = os.posix_spawn(sys.executable, argv, os.environ)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {stage!r} failed (exit {os.waitstatus_to_exitcode(status)})")
    record = json.loads((folder / "stages" / f"{stage.replace(' ', '-')}.json").read_text())
    # interpreter start, imports and the config: the process's time before its first step
    record["steps"] = [("start-up", wall - sum(seconds for _, seconds in record["steps"])), *record["steps"]]
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / MB, **record}


def machine() -> str:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (
        f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {memory:.0f} GiB, "
        f"load average {load}, niceness {os.nice(0)}"
    )


def report(made: dict[str, Any], results: dict[str, dict[str, Any]], before: str, after: str) -> None:
    print(
        f"\ncorpus: {made['utterances']:,} utterances, {made['hours']:.1f} h, {made['speakers']:,} speakers, "
        f"{made['pool']} real-speech FLAC files behind the symlinks (generated in {made['generate_s']:.0f} s)"
    )
    print(f"machine before: {before}\nmachine after:  {after}\n")
    print(f"{'stage':10s} {'wall s':>8s} {'cpu s':>8s} {'peak MB':>8s}  {'target':19s} result")
    floor = results.pop(BASELINE)
    print(
        f"{BASELINE:10s} {floor['wall_s']:8.1f} {floor['cpu_s']:8.1f} {floor['peak_mb']:8.0f}  (in every row below: "
        f"interpreter, torch, the config)"
    )
    target = f"< {TARGET_S:.0f} s, < {TARGET_MB:.0f} MB"
    for stage, measured in results.items():
        ok = measured["wall_s"] < TARGET_S and measured["peak_mb"] < TARGET_MB
        print(
            f"{stage:10s} {measured['wall_s']:8.1f} {measured['cpu_s']:8.1f} {measured['peak_mb']:8.0f}  "
            f"{target:19s} {'pass' if ok else 'FAIL'}"
        )
    total = {key: sum(measured[key] for measured in results.values()) for key in ("wall_s", "cpu_s")}
    peak = max(measured["peak_mb"] for measured in results.values())
    print(
        f"{'all four':10s} {total['wall_s']:8.1f} {total['cpu_s']:8.1f} {peak:8.0f}  {target:19s} "
        f"{'pass' if total['wall_s'] < TARGET_S and peak < TARGET_MB else 'FAIL'} (the sums; the largest peak)"
    )
    print(
        "(cpu s: user + system time of the stage's process and its threads; on a shared machine the wall time is "
        "the larger by the time others took)"
    )
    print("\nsteps (s, inside each stage's process):")
    for stage, measured in results.items():
        print(f"  {stage:10s} " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in measured["steps"]))
    print("\nwhat they made:")
    for stage, measured in results.items():
        print(
            f"  {stage:10s} "
            + ", ".join(
                f"{name} {value:,.4g}" if isinstance(value, float) else f"{name} {value:,}"
                for name, value in measured["result"].items()
            )
        )


def main() -> None:
    args = parse_args()
    if args.stage:
        run_stage(args)
        return
    config = paper_config(args)
    temporary = None if args.folder else tempfile.mkdtemp(prefix="data_scale-")
    folder = Path(args.folder or temporary)
    try:
        generated = folder / "generated.json"
        wanted = {"utterances": args.utterances, "pool": args.pool, "vocab": args.vocab, "seed": args.seed}
        made = json.loads(generated.read_text()) if generated.exists() else None
        if made is None or {key: made[key] for key in wanted} != wanted:
            if folder.exists() and any(folder.iterdir()):
                if made is None:
                    raise SystemExit(f"{folder} is not empty and holds no generated corpus")
                shutil.rmtree(folder)
            print(f"generating {args.utterances:,} utterances in {folder} ...", file=sys.stderr)
            made = generate_corpus(args, config, folder)
        before = machine()
        results = {}
        for stage in (BASELINE, *STAGES):
            print(f"stage {stage} ...", file=sys.stderr)
            results[stage] = measure(args, folder, stage)
        report(made, results, before, machine())
    finally:
        if temporary:
            shutil.rmtree(temporary)


if __name__ == "__main__":
    main()
