"""One rank of a data-parallel training job: what torchrun runs in each process
(`python -m omni.jobs.training_rank <checkpoint dir>/rank_job.json`, omni.asr.parallel.launch).

It joins the job's process group, trains its share (omni.jobs.training.train_rank) and, on rank 0,
reports the outcome next to the job file for the launching process's cost record.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import gc
import sys
from pathlib import Path

from omni.asr.parallel import join_from_environment, leave, rank_device
from omni.atomic import write_json
from omni.jobs.training import OUTCOME_FILE, RankJob, train_rank
from omni.runtime import resolve_device


def main(job_file: Path) -> None:
    # A rank that dies of a signal (a native abort, a segfault) prints where every thread was: torchrun
    # reports only the signal.
    faulthandler.enable(all_threads=True)
    job = RankJob.read(job_file)
    device = resolve_device(job.setup.training.device)
    ranks = join_from_environment(device)
    finished = False
    try:
        outcome = train_rank(job, ranks, rank_device(device))
        if ranks.is_writer:
            write_json(job_file.parent / OUTCOME_FILE, dataclasses.asdict(outcome))
        finished = True
    finally:
        # What the share built (the DistributedDataParallel wrapper holds the group) is collected while
        # the group is alive, not in the interpreter's teardown.
        gc.collect()
        leave(finished)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
