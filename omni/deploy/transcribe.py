"""`transcribe`: stream audio through an exported model in ONNX Runtime or ExecuTorch, as a device would.

    transcribe results/models/omni/seed1237/s0.9/deploy speech.flac other.wav
    arecord -f S16_LE -r 16000 -c 1 -t raw | transcribe BUNDLE - --partials

Files (WAV, FLAC: anything soundfile reads) are fed a segment's samples at a time, as a microphone
would deliver them; `-` reads raw 16-bit little-endian mono PCM at the model's sample rate from stdin.
Prints each file's final transcript (and, with --partials, the hypothesis each time a chunk adds to
it) on stdout, and the per-chunk latency and real-time factor on stderr. The ONNX variants need only
numpy, onnxruntime and soundfile: no torch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from omni.deploy.bundle import Bundle, read_bundle
from omni.deploy.recognizer import load_programs, recognize_stream

PCM_SCALE = 32768.0  # int16 full scale
P95 = 95  # the percentile of the per-chunk latency reported beside its mean (as the speed table's)


def file_blocks(path: Path, bundle: Bundle, block: int) -> Iterator[np.ndarray]:
    """Mono float32 blocks of a sound file at the bundle's rate (several channels are averaged)."""
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise SystemExit(f"transcribe: {path}: not a sound file soundfile can read ({error})") from error
    if info.samplerate != bundle.shape.sample_rate:
        raise SystemExit(
            f"transcribe: {path}: {info.samplerate} Hz, the model takes {bundle.shape.sample_rate} Hz"
            f" (convert it first, e.g. sox {path} -r {bundle.shape.sample_rate} out.wav)"
        )
    for samples in soundfile.blocks(str(path), blocksize=block, dtype="float32", always_2d=True):
        yield samples.mean(axis=1)


def stdin_blocks(block: int) -> Iterator[np.ndarray]:
    """Raw s16le mono PCM from stdin, `block` samples at a time (the last may be shorter)."""
    stream = sys.stdin.buffer
    while data := stream.read(2 * block):
        usable = len(data) - len(data) % 2
        yield np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / PCM_SCALE


def transcribe(bundle: Bundle, variant: str, source: str, threads: int, partials: bool) -> str:
    programs = load_programs(bundle, variant, threads)
    block = bundle.shape.segment_frames * bundle.shape.hop_length
    blocks = stdin_blocks(block) if source == "-" else file_blocks(Path(source), bundle, block)
    audio = 0

    def counted() -> Iterator[np.ndarray]:
        nonlocal audio
        for samples in blocks:
            audio += len(samples)
            yield samples

    for recognizer, final in recognize_stream(bundle, programs, counted()):
        if partials and not final:
            print(f"partial\t{source}\t{bundle.text(recognizer.tokens)}", flush=True)
    text = bundle.text(recognizer.tokens)
    print(f"final\t{source}\t{text}", flush=True)
    chunk_seconds = recognizer.chunk_seconds
    if chunk_seconds:
        seconds = audio / bundle.shape.sample_rate
        p95 = float(np.percentile(chunk_seconds, P95))
        print(
            f"{source}: {len(chunk_seconds)} chunks, {1e3 * statistics.fmean(chunk_seconds):.2f} ms mean,"
            f" {1e3 * p95:.2f} ms p95 per chunk ({variant}, {threads} thread(s)); real-time factor"
            f" {sum(chunk_seconds) / max(seconds, 1e-9):.4f}",
            file=sys.stderr,
        )
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="transcribe", description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", help="an exported model's folder (the one holding deploy.json)")
    parser.add_argument("audio", nargs="+", help="sound files, or - for raw s16le mono PCM on stdin")
    parser.add_argument(
        "--runtime", default="onnx-int8", help="onnx, onnx-int8, executorch or executorch-int8 (default onnx-int8)"
    )
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of the runtime (default 1)")
    parser.add_argument("--partials", action="store_true", help="print the hypothesis as each chunk extends it")
    args = parser.parse_args(argv)
    try:
        bundle = read_bundle(args.bundle)
        for source in args.audio:
            transcribe(bundle, args.runtime, source, args.threads, args.partials)
    except ValueError as error:
        print(f"transcribe: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
