"""What /proc says about the processes under test: who listens where, CPU time, memory.

Linux only; where /proc cannot tell (a remote system, another kernel) the readers return
None and the report prints "n/a" rather than a made-up figure.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_LISTEN = "0A"


def die_with_parent() -> None:
    """preexec_fn for children: the kernel sends SIGTERM when the bench dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float | None:
    """User + system CPU time of every thread of the process so far (and of the children
    it has waited for, such as the launcher's migration steps)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After "pid (comm)": state is field 3, utime 14, stime 15, cutime 16, cstime 17
    # (1-based, proc(5)).
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS_PER_SECOND


def memory_mb(pid: int, field: str = "VmRSS") -> float | None:
    """Resident memory (VmRSS) or its peak (VmHWM) in MiB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def busy_cpu_seconds() -> float:
    """CPU time the whole machine spent outside idle and iowait, all cores together."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(value) for value in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    # guest time is already counted in user time.
    return (sum(values[:8]) - idle) / TICKS_PER_SECOND


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def pid_listening_on(port: int) -> int | None:
    """The process holding the listening socket of this TCP port on this machine (the
    first found: with several workers, pids_listening_on has them all)."""
    pids = pids_listening_on(port, first=True)
    return pids[0] if pids else None


def pids_listening_on(port: int, *, first: bool = False) -> list[int]:
    """Every process holding the listening socket of this TCP port (a service's parent
    and its workers share one)."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    found: list[int] = []
    if not inodes:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry}/fd/{fd}") in inodes:
                        found.append(int(entry))
                        if first:
                            return found
                        break
    return found


def postgres_backends(databases: Iterable[str]) -> list[int]:
    """PostgreSQL server processes serving these databases, found by their process titles."""
    wanted = set(databases)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                words = cmdline.read().replace(b"\0", b" ").split()
        except OSError:
            continue
        # "postgres: [cluster name:] user database host(port) state"
        if words[:1] == [b"postgres:"]:
            if len(words) > 1 and words[1].endswith(b":"):
                words = words[1:]
            if len(words) > 2 and words[2].decode(errors="replace") in wanted:
                pids.append(int(entry))
    return pids


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds of each process of each named group, and of the whole machine."""

    at: float
    groups: dict[str, dict[int, float]]
    machine: float


def sample_cpu(groups: Mapping[str, Iterable[int]]) -> CpuSample:
    readings: dict[str, dict[int, float]] = {}
    for name, pids in groups.items():
        seconds = {pid: cpu_seconds(pid) for pid in pids}
        readings[name] = {pid: value for pid, value in seconds.items() if value is not None}
    return CpuSample(at=time.monotonic(), groups=readings, machine=busy_cpu_seconds())


def cores_used(before: CpuSample, after: CpuSample) -> dict[str, float | None]:
    """Average cores each group kept busy between two samples, and "machine" for everything.

    A process seen only at the end (a database connection opened meanwhile) counts with
    all its time; one that ended meanwhile is lost, so a group's figure is a lower bound.
    """
    wall = max(after.at - before.at, 1e-9)
    used: dict[str, float | None] = {}
    for name, end in after.groups.items():
        start = before.groups.get(name, {})
        if not end and not start:
            used[name] = None
            continue
        spent = sum(max(value - start.get(pid, 0.0), 0.0) for pid, value in end.items())
        used[name] = spent / wall
    used["machine"] = (after.machine - before.machine) / wall
    return used
