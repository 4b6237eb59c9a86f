"""Optional CPU profile of a service process (``--profile-worker``): one cProfile per thread, timed
with the thread's CPU clock (so waiting is not counted), merged into one pstats file at exit.

Profiling slows the process down severalfold: the throughput of a profiled run is not comparable.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import threading
import time
from collections import defaultdict
from pathlib import Path
from types import FrameType
from typing import Any

ENV_VAR = "BENCH_PROFILE"

_profiles: list[tuple[str, cProfile.Profile]] = []


def _new_profile() -> cProfile.Profile:
    profile = cProfile.Profile(timer=time.thread_time_ns, timeunit=1e-9)
    _profiles.append((threading.current_thread().name, profile))
    return profile


#: The SDK creates each workflow instance (the sandbox re-imports the workflow's modules) on the
#: event loop thread, and runs activations in its ``temporal_workflow_*`` threads.
CREATE_INSTANCE = "workflow instance creation (sandbox imports; on the event loop)"
EVENT_LOOP = "event loop, rest: activities, local activities, SDK"
ACTIVATIONS = "workflow activations (workflow threads)"
OTHER = "other threads"


def thread_group(name: str) -> str:
    if name == "MainThread":
        return EVENT_LOOP
    if name.startswith("temporal_workflow_"):
        return ACTIVATIONS
    return OTHER


def _start_in_thread(frame: FrameType, event: str, arg: Any) -> None:
    # Called on a new thread's first profiling event; enabling replaces this hook for that thread.
    _new_profile().enable()


def start() -> None:
    threading.setprofile(_start_in_thread)
    _new_profile().enable()


def dump(path: str) -> None:
    threading.setprofile(None)
    stats: pstats.Stats | None = None
    by_thread: dict[str, float] = defaultdict(float)
    for name, profile in _profiles:
        profile.disable()
        one = pstats.Stats(profile)
        by_thread[name] += one.total_tt  # type: ignore[attr-defined]
        if stats is None:
            stats = one
        else:
            stats.add(one)
    if stats is not None:
        stats.dump_stats(path)
        Path(path + ".threads.json").write_text(json.dumps(by_thread))


def _owner(filename: str, repo_root: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if filename.startswith(repo_root):
        return "runledger: " + filename[len(repo_root) :].lstrip("/").split("/", 1)[0].removesuffix(".py")
    if filename.startswith("<") or filename == "~":
        return "C builtins"
    if "/lib/python3" in filename:
        return "stdlib: " + filename.split("/lib/python3", 1)[1].split("/", 2)[1].removesuffix(".py")
    return filename


def summarize(path: Path, repo_root: Path, top: int = 15) -> dict[str, Any]:
    """Own CPU time by package and the functions with the most own CPU time."""
    stats = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1.0
    by_owner: dict[str, float] = defaultdict(float)
    for (filename, _line, _name), entry in raw.items():
        by_owner[_owner(filename, str(repo_root))] += entry[2]
    functions = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:top]
    threads_file = Path(str(path) + ".threads.json")
    by_thread: dict[str, float] = defaultdict(float)
    if threads_file.exists():
        for name, secs in json.loads(threads_file.read_text()).items():
            by_thread[thread_group(name)] += secs
    creation = [
        entry
        for (filename, _line, name), entry in raw.items()
        if name == "_create_workflow_instance" and filename.endswith("temporalio/worker/_workflow.py")
    ]
    if creation and EVENT_LOOP in by_thread:
        # A plain (not async) function, so its cumulative thread-CPU time is exact.
        by_thread[CREATE_INSTANCE] = sum(entry[3] for entry in creation)
        by_thread[EVENT_LOOP] -= by_thread[CREATE_INSTANCE]
        by_thread["workflow instances created"] = sum(entry[1] for entry in creation)
    return {
        "total_cpu_s": total,
        "by_thread": by_thread,
        "by_package": [
            {"package": owner, "cpu_s": secs, "share": secs / total}
            for owner, secs in sorted(by_owner.items(), key=lambda item: item[1], reverse=True)[:top]
        ],
        "top_functions": [
            {
                "function": f"{_owner(filename, str(repo_root))}:{Path(filename).name}:{line}({name})",
                "own_cpu_s": entry[2],
                "cumulative_s": entry[3],
                "calls": entry[1],
            }
            for (filename, line, name), entry in functions
        ],
    }
