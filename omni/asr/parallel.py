"""Data-parallel training on PyTorch's own engine: `torchrun` (torch.distributed.run) starts one
process per GPU, or `train.cpu_processes` processes on a CPU, and each wraps the model in
DistributedDataParallel (NCCL on GPU, gloo on CPU), which averages the gradients in backward.

Why processes on a CPU: small matrices parallelise poorly inside one op. On 2 cores, one
2-thread process ran a 1,000-frame tiny-preset step in 132 ms and two 1-thread processes ran one
each in 175 ms side by side: 1.5x the audio per second before the gradient exchange.

The job's own process (a Snakemake `script:`) launches torchrun on the rank entry point
(omni.jobs.training_rank) and waits; torchrun's agent stops every rank as soon as one fails, and
the job fails with the rank's error on stderr. Rank 0 is the only writer (checkpoints, logs,
outputs). A one-process job runs in the job's own process, without a launcher.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import torch
import torch.distributed as dist

COLLECTIVE_TIMEOUT = timedelta(minutes=30)
"""How long a rank waits for the others in a collective before giving up."""
REPOSITORY = Path(__file__).resolve().parents[2]  # on every rank's import path
OUTPUT_CHUNK = 4096  # bytes of the ranks' output relayed at a time (progress bars redraw with \r)


class RankFailedError(RuntimeError):
    """A rank of a data-parallel job failed (its traceback is on stderr, before this error)."""


@dataclass(frozen=True)
class Ranks:
    """This process's place among the data-parallel processes of one job."""

    rank: int = 0
    world: int = 1

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.world > 1

    def sum(self, values: Iterable[float], device: torch.device) -> list[float]:
        """Element-wise sum over ranks (a non-finite value on any rank makes the sum non-finite)."""
        values = list(values)
        if not self.parallel:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def mean(self, value: float, device: torch.device) -> float:
        return self.sum([value], device)[0] / self.world

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value` (picklable), in rank order, on every rank."""
        if not self.parallel:
            return [value]
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, value)
        return gathered


def backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def join_from_environment(device: torch.device) -> Ranks:
    """In a process torchrun started: join the job's process group (rank and world from torchrun's
    environment) and, on CUDA, take this rank's GPU (its local rank)."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend(device), rank=rank, world_size=world, timeout=COLLECTIVE_TIMEOUT)
    return Ranks(rank, world)


def rank_device(device: torch.device) -> torch.device:
    """This rank's device: its own GPU under torchrun (LOCAL_RANK), else `device`."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def leave(finished: bool) -> None:
    """Tear down this rank's process group. After a finished share, the ranks first wait for each other
    (a barrier), so none destroys its group while a slower rank (rank 0 writing its outputs) still has it
    in use; after an error, at once (the others are stopped by torchrun's agent)."""
    if not dist.is_initialized():
        return
    if finished:
        dist.barrier()
    dist.destroy_process_group()


def launch(world: int, module: str, arguments: list[str]) -> None:
    """Run `python -m <module> <arguments>` in `world` processes through torchrun, on this machine,
    and wait; a rank that fails stops the others and raises here."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(world),
        "--max-restarts",
        "0",
        "-m",
        module,
        *arguments,
    ]
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])),
    }
    # The ranks' output goes through this process's sys.stderr: the job's log (omni.logs.tee_stderr) holds it.
    with subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as ranks:
        # stdout=PIPE with the default buffering: Popen opens the pipe as an io.BufferedReader (read1)
        output = cast(io.BufferedReader, ranks.stdout)
        for chunk in iter(lambda: output.read1(OUTPUT_CHUNK), b""):
            sys.stderr.write(chunk.decode(errors="replace"))
        returncode = ranks.wait()
    if returncode != 0:
        raise RankFailedError(
            f"{world}-process job `{' '.join(command[2:])}` failed with exit code "
            f"{returncode}; the failing rank's traceback is above"
        )
