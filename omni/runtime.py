"""Where and how a job runs: device choice, thread count, seeding."""

from __future__ import annotations

import random

import numpy as np
import torch


def resolve_device(setting: str) -> torch.device:
    """`auto` picks CUDA when present so the same config runs on a laptop and a GPU node."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"config key 'device': '{setting}' requested but CUDA is not available")
    return device


def set_threads(threads: int) -> None:
    """A job uses exactly its rule's threads, so `--cores N` is an honest budget."""
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
