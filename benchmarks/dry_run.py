"""How long `snakemake -n` takes to plan a study: the default and the LibriSpeech configs (target < 5 s).

A dry run is what a user types before every run and after every config edit; a slow one hides
what a change reruns. Each config is planned in an empty folder (nothing done yet: every job is
scheduled), --rounds times; the median wall time is printed, with the job count planned. The
LibriSpeech plan needs no LibriSpeech tree (it is read by the manifest jobs, not by the plan).

    .venv/bin/python benchmarks/dry_run.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIGS = {"default": [], "librispeech": ["configs/librispeech.yaml"]}
TARGET_SECONDS = 5.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def planned_jobs(output: str) -> int:
    """The "total" row of the dry run's job stats."""
    rows = [line.split() for line in output.splitlines() if line.startswith("total")]
    return int(rows[-1][1]) if rows else 0


def main() -> None:
    args = parse_args()
    for name, configfiles in CONFIGS.items():
        seconds, jobs = [], 0
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as workdir:
                command = [
                    sys.executable,
                    "-m",
                    "snakemake",
                    "--snakefile",
                    str(REPO / "Snakefile"),
                    "-n",
                    "--cores",
                    "1",
                    "--directory",
                    workdir,
                ]
                if configfiles:
                    command += ["--configfile", *(str(REPO / path) for path in configfiles)]
                start = time.perf_counter()
                run = subprocess.run(command, capture_output=True, text=True, check=True)
                seconds.append(time.perf_counter() - start)
                jobs = planned_jobs(run.stdout + run.stderr)
        median = statistics.median(seconds)
        print(
            f"{name:12s}: {median:.2f} s to plan {jobs} jobs "
            f"({median / TARGET_SECONDS:.2f} of the {TARGET_SECONDS:g} s target; "
            f"rounds {', '.join(f'{s:.2f}' for s in seconds)})"
        )


if __name__ == "__main__":
    main()
