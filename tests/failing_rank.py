"""A two-rank program for tests/test_parallel.py: rank 1 fails while rank 0 waits for it in a collective."""

import os

import torch
import torch.distributed as dist

if __name__ == "__main__":
    dist.init_process_group("gloo")
    if int(os.environ["RANK"]) == 1:
        raise ValueError("rank 1 fails on purpose")
    dist.all_reduce(torch.zeros(1))
