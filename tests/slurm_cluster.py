"""A real one-node SLURM on this machine for tests of the SLURM path: Debian's slurm-wlm and munge,
installed with apt-get when missing, a slurm.conf for localhost, munged, slurmctld and slurmd started
directly (these machines have no systemd), and stopped again by the pids they wrote.

Facts this follows (checked on this machine kind, ../shared/notes/slurm-single-node.md): no cgroup
plugins (linuxproc / task/none, and no cgroup.conf), DefMemPerCPU set so jobs share the node, and no
slurmdbd: completed jobs are listed from the jobcomp/filetxt log (`sacct -c`), and the executor plugin
polls with `squeue`, kept reliable by a long MinJobAge.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
PARTITION = "debug"
SLURM_ETC = Path("/etc/slurm")
RUN = Path("/run/slurm")
SPOOL = Path("/var/spool/slurm-test")
LOGS = Path("/var/log/slurm-test")
JOBCOMP_LOG = LOGS / "jobcomp.log"
MUNGE_RUN = Path("/run/munge")
MUNGE_KEY = Path("/etc/munge/munge.key")
START_TIMEOUT_S = 60.0
MEMORY_RESERVE_MB = 2000  # left to the machine outside SLURM's RealMemory
MIN_JOB_AGE_S = 600  # finished jobs stay visible to squeue this long (the plugin's status polls)


class Unavailable(RuntimeError):
    """SLURM cannot be brought up here; the message says why (tests skip with it)."""


def _run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


def install() -> None:
    """apt-get the packages that are missing (root only)."""
    if all(shutil.which(binary) for binary in ("slurmctld", "slurmd", "sinfo", "sacct", "munged")):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise Unavailable(
            "SLURM is not installed and cannot be: this needs root and apt-get "
            "(Debian's slurmctld, slurmd, slurm-client, munge)"
        )
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        _run("apt-get", "update", "-qq", env=environment)
        _run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES, env=environment)
    except subprocess.CalledProcessError as error:
        raise Unavailable(f"apt-get could not install {PACKAGES}: {error.stderr[-500:]}") from error


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise Unavailable("no MemTotal in /proc/meminfo")


def slurm_conf(host: str, cpus: int, memory_mb: int) -> str:
    return "\n".join(
        [
            "ClusterName=omni-test",
            f"SlurmctldHost={host}(127.0.0.1)",
            "SlurmUser=slurm",
            "AuthType=auth/munge",
            f"StateSaveLocation={SPOOL}/ctld",
            f"SlurmdSpoolDir={SPOOL}/d",
            f"SlurmctldPidFile={RUN}/slurmctld.pid",
            f"SlurmdPidFile={RUN}/slurmd.pid",
            f"SlurmctldLogFile={LOGS}/slurmctld.log",
            f"SlurmdLogFile={LOGS}/slurmd.log",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "ReturnToService=2",
            f"MinJobAge={MIN_JOB_AGE_S}",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={JOBCOMP_LOG}",
            f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP "
            f"DefMemPerCPU={memory_mb // cpus}",
            "",
        ]
    )


@dataclass
class Cluster:
    host: str
    pid_files: list[Path]  # of the daemons this cluster started

    def stop(self) -> None:
        """Stop the daemons this cluster started (by their pid files), slurmd first."""
        for pid_file in self.pid_files:
            if pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
                except (ProcessLookupError, ValueError):
                    pass
        time.sleep(1)

    def completed_jobs(self) -> dict[str, str]:
        """SLURM job id -> final state, from the job completion log (`sacct -c`)."""
        listing = _run("sacct", "-c", "-n", "-P", "-o", "JobID,State").stdout
        return dict(line.split("|")[:2] for line in listing.splitlines() if "|" in line)


def start() -> Cluster:
    """Install if needed, write the configuration and start munged, slurmctld and slurmd; wait for
    the node to be idle."""
    install()
    if os.geteuid() != 0:
        raise Unavailable("starting SLURM's daemons needs root")
    host = socket.gethostname()
    cpus = os.cpu_count() or 1
    for folder in (RUN, SPOOL / "ctld", SPOOL / "d", LOGS):
        folder.mkdir(parents=True, exist_ok=True)
        shutil.chown(folder, "slurm", "slurm")
    JOBCOMP_LOG.touch()
    shutil.chown(JOBCOMP_LOG, "slurm", "slurm")
    SLURM_ETC.mkdir(parents=True, exist_ok=True)
    (SLURM_ETC / "slurm.conf").write_text(slurm_conf(host, cpus, _memory_mb() - MEMORY_RESERVE_MB))
    (SLURM_ETC / "cgroup.conf").unlink(missing_ok=True)  # slurmd 22.05 dies on a cgroup.conf here
    started_munge = _start_munge()
    _run("/usr/sbin/slurmctld")
    _run("/usr/sbin/slurmd")
    cluster = Cluster(
        host, [RUN / "slurmd.pid", RUN / "slurmctld.pid", *([MUNGE_RUN / "munged.pid"] if started_munge else [])]
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.strip()
        if state == "idle":
            return cluster
        time.sleep(1)
    cluster.stop()
    raise Unavailable(f"the SLURM node did not become idle within {START_TIMEOUT_S:g} s (sinfo: {state!r}; see {LOGS})")


def _start_munge() -> bool:
    """Start munged unless one answers already; whether it was started here."""
    if subprocess.run(["sh", "-c", "munge -n | unmunge"], capture_output=True).returncode == 0:
        return False
    shutil.chown(MUNGE_KEY, "munge", "munge")
    MUNGE_KEY.chmod(0o400)
    MUNGE_RUN.mkdir(parents=True, exist_ok=True)
    shutil.chown(MUNGE_RUN, "munge", "munge")
    _run("su", "-s", "/bin/sh", "munge", "-c", "/usr/sbin/munged")
    _run("sh", "-c", "munge -n | unmunge")
    return True
