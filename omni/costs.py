"""Cost records: what every training or evaluation job really used, measured, never estimated."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from omni.atomic import write_json


@dataclass
class CostRecord:
    """One job's measured cost; accounting sums these records."""

    job: str
    arm: str
    sparsity: float | None
    device_kind: str = "cpu"
    device_name: str = ""
    device_count: int = 1
    processes: int = 1
    threads: int = 1
    wall_s: float = 0.0
    steps: int = 0
    subnet_passes: int = 0
    audio_hours: float = 0.0
    peak_mem_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def device_hours(self) -> float:
        """GPU-hours on GPUs, CPU core-hours on CPUs: a CPU job occupies `threads` cores."""
        units = self.device_count if self.device_kind == "cuda" else self.threads
        return self.wall_s * units / 3600.0


class CostMeter:
    """Measures a job: wall time across resumes (adds earlier segments), device, peak memory."""

    def __init__(
        self,
        job: str,
        arm: str,
        sparsity: float | None,
        device: torch.device,
        threads: int,
        prior_wall_s: float = 0.0,
        processes: int = 1,
        devices: int = 1,
    ) -> None:
        """`devices`: the GPUs the job really uses (one per process of a data-parallel CUDA job)."""
        self.record = CostRecord(job=job, arm=arm, sparsity=sparsity, threads=threads, processes=processes)
        self.device = device
        self.prior_wall_s = prior_wall_s
        self.start = time.perf_counter()
        self.record.device_kind = device.type
        if device.type == "cuda":
            self.record.device_name = torch.cuda.get_device_name(device)
            self.record.device_count = devices
            torch.cuda.reset_peak_memory_stats(device)
        else:
            self.record.device_name = _cpu_name()
            self.record.device_count = 1

    def elapsed(self) -> float:
        return self.prior_wall_s + time.perf_counter() - self.start

    def peak_mem_mb(self) -> float:
        return peak_mem_mb(self.device)

    def finish(self, path: str | os.PathLike, **fields: Any) -> CostRecord:
        """`fields` set record fields; `peak_mem_mb` defaults to this process's peak."""
        self.record.wall_s = self.elapsed()
        self.record.peak_mem_mb = self.peak_mem_mb()
        for key, value in fields.items():
            setattr(self.record, key, value)
        payload = asdict(self.record)
        payload["device_hours"] = self.record.device_hours
        payload["device_hours_unit"] = "GPU-hours" if self.device.type == "cuda" else "CPU core-hours"
        write_json(path, payload)
        return self.record


def peak_mem_mb(device: torch.device) -> float:
    """This process's peak memory on `device` (a data-parallel job sums its ranks' peaks)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "cpu"
