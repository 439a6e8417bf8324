"""A training job SIGKILLed in the middle of a step, for tests/test_checkpoint_integrity.py:

    python -m tests.killed_job <rank_job.json> <step> <rank>

runs the job the file describes (omni.jobs.training.RankJob) and kills the process of rank <rank> with
SIGKILL right after its forward and backward pass of step <step> + 1, before the optimizer steps: no
cleanup, no `finally`, as the kernel's OOM killer or a pre-empted node would. In one process it runs the
job as a rule does (run_training_job); under torchrun (omni.asr.parallel.launch) it is each rank's program
(omni.jobs.training_rank). Only the kill is added: the job, its data, checkpoints and resume are the real ones.
"""

import os
import signal
import sys
from pathlib import Path

from omni.asr.trainer import GradientStrategy
from omni.jobs import training_rank
from omni.jobs.training import RankJob, run_training_job


def kill_in_step(step: int, rank: int) -> None:
    accumulate = GradientStrategy.accumulate

    def accumulate_then_die(self, at: int, loss_fn):  # noqa: ANN001 (GradientStrategy.accumulate's own)
        result = accumulate(self, at, loss_fn)
        if at == step and int(os.environ.get("RANK", "0")) == rank:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    GradientStrategy.accumulate = accumulate_then_die


if __name__ == "__main__":
    job_file, step, rank = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    kill_in_step(step, rank)
    if "RANK" in os.environ:
        training_rank.main(job_file)
    else:
        job = RankJob.read(job_file)
        run_training_job(job.setup, job.job, job.paths, job.threads)
