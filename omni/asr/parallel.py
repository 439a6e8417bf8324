"""Data-parallel training in several processes: every rank trains on its own batches and the
ranks average their gradients before each optimizer step, so the weights stay identical.

Why processes on a CPU: small matrices parallelise poorly inside one op. On 2 cores, one
2-thread process ran a 1,000-frame tiny-preset step in 132 ms and two 1-thread processes ran one
each in 175 ms side by side: 1.5x the audio per second before the gradient exchange, 1.3x
measured in a whole dense job (ranks also wait for the slower batch of the pair). The same
collectives run one process per GPU with NCCL.

Rank 0 is the calling process and the only writer (checkpoints, logs, outputs); the other ranks
are forked from it before any computation, take part in every collective and write nothing.
Fork, not spawn: a spawned child re-executes the parent's main script, and Snakemake `script:`
files are plain top-level code. Forking a process that has used CUDA is unsafe, so several
processes on CUDA are refused until a launcher (torchrun, SLURM tasks) provides the ranks.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

import torch
import torch.distributed as dist

Result = TypeVar("Result")

STORE_FILE = "rendezvous"
COLLECTIVE_TIMEOUT = timedelta(minutes=30)
"""How long a rank waits for the others in a collective before giving up."""
CHILD_FAILED_EXIT_CODE = 1


class RankFailedError(RuntimeError):
    """A forked rank exited with an error (its traceback is on stderr)."""


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

    def average_gradients(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """One all-reduce of every gradient, flattened (a missing gradient counts as zeros)."""
        if not self.parallel:
            return
        params = list(parameters)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch._utils._flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat.div_(self.world)
        for param, averaged in zip(params, torch._utils._unflatten_dense_tensors(flat, grads)):
            param.grad = averaged

    def sum(self, values: Iterable[float], device: torch.device) -> list[float]:
        """Element-wise sum over ranks (a non-finite value on any rank makes the sum non-finite)."""
        values = list(values)
        if not self.parallel:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, value: Any) -> list[Any]:
        """Every rank's `value` (picklable), in rank order, on every rank."""
        if not self.parallel:
            return [value]
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, value)
        return gathered


def _backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def _join(ranks: Ranks, store: Path, device: torch.device) -> None:
    dist.init_process_group(_backend(device), store=dist.FileStore(str(store), ranks.world), rank=ranks.rank,
                            world_size=ranks.world, timeout=COLLECTIVE_TIMEOUT)


def _child(ranks: Ranks, store: Path, device: torch.device, target: Callable[[Ranks], Any]) -> None:
    try:
        _join(ranks, store, device)
        target(ranks)
        dist.destroy_process_group()
    except BaseException:  # report, then leave without running the parent's exit handlers
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        os._exit(CHILD_FAILED_EXIT_CODE)
    os._exit(0)


def run_ranks(world: int, device: torch.device, target: Callable[[Ranks], Result], config_key: str) -> Result:
    """Run `target` in `world` processes (this one is rank 0) and return rank 0's result."""
    if world == 1:
        return target(Ranks())
    if device.type == "cuda":
        raise ValueError(f"config key '{config_key}': {world} processes on CUDA need a launcher (torchrun or "
                         f"SLURM tasks); forking a CUDA process is unsafe. Use 1 here.")
    folder = Path(tempfile.mkdtemp(prefix="omni-ranks-"))
    store = folder / STORE_FILE
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_child, args=(Ranks(rank, world), store, device, target), daemon=True)
                for rank in range(1, world)]
    try:
        for child in children:
            child.start()
        _join(Ranks(0, world), store, device)
        result = target(Ranks(0, world))
        dist.destroy_process_group()
        for rank, child in enumerate(children, start=1):
            child.join()
            if child.exitcode != 0:
                raise RankFailedError(f"rank {rank} of {world} exited with code {child.exitcode}")
        return result
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
                child.join()
        if dist.is_initialized():
            dist.destroy_process_group()
        shutil.rmtree(folder, ignore_errors=True)
