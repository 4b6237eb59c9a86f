"""Cheap per-process CPU time and peak RSS from /proc (Linux only; zeros elsewhere)."""

from __future__ import annotations

import os
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces: split after its closing parenthesis.
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU of the process (all its threads); with ``reaped_children``, plus the CPU of
    children it has already waited for (how a postmaster accounts for backends that exited)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the command name: state=0, ppid=1, ..., utime=11, stime=12, cutime=13, cstime=14.
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """A multi-process server (Postgres): the parent, its reaped children and its live children."""
    return cpu_seconds(pid, reaped_children=True) + sum(cpu_seconds(child) for child in children(pid))


def peak_rss_mib(pid: int) -> float | None:
    """The process's high-water resident set size (VmHWM)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def child_by_exe(parent: int, name: str) -> int | None:
    """The first child of ``parent`` whose executable is called ``name``."""
    for child in children(parent):
        try:
            if Path(os.readlink(f"/proc/{child}/exe")).name == name:
                return child
        except OSError:
            continue
    return None


def machine_busy_seconds() -> float:
    """CPU-seconds the whole machine has spent busy since boot (all cores; /proc/stat)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return 0.0
    # cpu user nice system idle iowait irq softirq steal ...
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def exited(pid: int) -> bool:
    """The process is gone or a zombie (exited, not yet reaped)."""
    fields = _stat_fields(pid)
    return fields is None or fields[0] in ("Z", "X")


def stop_process(pid: int, sig: int, timeout_s: float) -> bool:
    """Send ``sig`` to one process and wait for it to exit; returns whether it did."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if exited(pid):
            return True
        time.sleep(0.05)
    return exited(pid)
