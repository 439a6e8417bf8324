"""What a run that ended before its study did really means.

Snakemake ends every such run with "At least one job did not complete successfully", also when it was
stopped on request (SIGTERM from a scheduler or `kill`, Ctrl-C): it then lets the running jobs finish,
starts no new one and exits with that line although every job it ran completed. The run's own log tells
the two apart: a job that failed is logged as "Error in rule <name>:".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

_JOB_ERROR = re.compile(r"^Error in rule ([\w-]+):", re.MULTILINE)


def unfinished_run_message(logfiles: Iterable[str | os.PathLike]) -> str:
    """One paragraph for the end of a run that stopped before its study finished (the Snakefile's onerror
    gets the run's log files)."""
    text = "".join(Path(path).read_text(errors="replace") for path in logfiles if Path(path).is_file())
    failed = sorted(set(_JOB_ERROR.findall(text)))
    if failed:
        return (
            f"The study stopped because jobs of {', '.join(failed)} failed (their errors and logs are above). "
            "Every job that completed is kept: fix the cause and run the same command again."
        )
    return (
        "The study stopped before it finished, and no job failed: the run was stopped on request (a "
        "signal such as SIGTERM or Ctrl-C), its running jobs finished and were kept, and no other job "
        "started. Run the same command again to continue where it stopped (Snakemake's closing line "
        'below, "At least one job did not complete successfully", counts the jobs it did not start).'
    )
