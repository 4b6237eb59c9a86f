"""The benchmarks' stack parts: the database, the service processes and their start-up and stop.

Contract: :func:`start_service` returns once ``python -m bench.serve <role>`` has printed ``ready``
(or raises with its log), and :meth:`Service.stop` ends it by pid (stdin closed, then SIGTERM, then
SIGKILL); :func:`phase` bounds a benchmark phase in time and names the services' state when it
fails; :class:`Processes` reads the CPU and peak memory of the processes that are reported.
:func:`clean_environment` drops every setting the caller's environment could leak into the stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psycopg
from sqlalchemy import make_url

from bench import procstat
from bench.common import ENV_VAR, StackConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: How run_bench runs the Temporal dev server (``WorkflowEnvironment.start_local``).
TEMPORAL_PERSISTENCE = "in-memory (start_local without a db file)"


#: The whole machine's busy CPU, so that other processes' load on a shared box is visible.
MACHINE = "machine"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def create_database(server_url: str) -> str:
    name = f"rl_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@dataclass
class Service:
    name: str
    proc: asyncio.subprocess.Process
    log_path: Path
    drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def _exited(self, timeout_s: float) -> bool:
        # Polls /proc as well as asyncio's child watcher, so a lost exit notification cannot hang us.
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.returncode is not None or procstat.exited(self.pid):
                return True
            await asyncio.sleep(0.05)
        return False

    async def stop(self) -> None:
        """Close stdin (the service shuts down cleanly), then SIGTERM, then SIGKILL, by pid."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        for escalation in (self.proc.terminate, self.proc.kill, None):
            if await self._exited(30 if escalation is self.proc.terminate else 10):
                break
            if escalation is None:
                print(f"warning: the {self.name} process (pid {self.pid}) did not exit")
                return
            with contextlib.suppress(ProcessLookupError):
                escalation()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), timeout=2)
        if self.proc.stdout is not None:
            with contextlib.suppress(TimeoutError):
                # To EOF, so the pipe transport closes while the event loop still runs.
                await asyncio.wait_for(self.proc.stdout.read(), timeout=2)

    def state(self) -> str:
        code = self.proc.returncode
        return f"{self.name} (pid {self.pid}) " + ("running" if code is None else f"exited with {code}")


@asynccontextmanager
async def phase(name: str, limit_s: float, services: Sequence[Service]) -> AsyncIterator[None]:
    """A benchmark phase with a time limit; a failure names the phase and the services' state."""
    try:
        async with asyncio.timeout(limit_s):
            yield
    except Exception as exc:
        states = "; ".join(s.state() for s in services)
        logs = "\n".join(f"--- {s.name} log ({s.log_path}):\n{s.log_tail()}" for s in services)
        raise RuntimeError(
            f"phase {name!r} failed after at most {limit_s:.0f} s: "
            f"{type(exc).__name__}: {exc}; {states}\n{logs}"
        ) from exc


#: Where the service processes cache bytecode: outside the repository and the venv, kept between runs.
PYCACHE_PREFIX = Path(tempfile.gettempdir()) / "runledger-bench-pycache"


def service_environment(*, bytecode_cache: bool) -> dict[str, str]:
    """The service processes' environment. With the bytecode cache on (the default), they write and
    read ``.pyc`` files under :data:`PYCACHE_PREFIX` even when the caller sets PYTHONDONTWRITEBYTECODE:
    without ``.pyc`` files every import compiles from source, including the modules the workflow
    sandbox re-imports for every workflow run, which is not how a deployed worker runs."""
    env = dict(os.environ)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE_PREFIX)
    return env


async def start_service(role: str, cfg: StackConfig, log_path: Path, env: dict[str, str]) -> Service:
    log: IO[bytes] = log_path.open("wb")
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.serve",
            role,
            cwd=REPO_ROOT,
            env={**env, ENV_VAR: cfg.to_json()},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    finally:
        log.close()
    service = Service(role, proc, log_path)
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=120)
    except TimeoutError:
        line = b""
    if line.strip() != b"ready":
        await service.stop()
        raise RuntimeError(f"the {role} process did not start; its log ({log_path}):\n{service.log_tail()}")
    # Keep draining stdout into the log: a full pipe would block the service's event loop (its JSON
    # logs go to stdout) and stall every run.
    service.drain = asyncio.create_task(_drain(proc.stdout, log_path))
    return service


async def _drain(stream: asyncio.StreamReader, log_path: Path) -> None:
    with log_path.open("ab") as sink:
        while chunk := await stream.read(65536):
            sink.write(chunk)


@dataclass
class Processes:
    """The processes whose CPU and memory are reported."""

    pids: dict[str, int]
    postgres_pid: int | None

    def cpu(self) -> dict[str, float]:
        snapshot = {name: procstat.cpu_seconds(pid) for name, pid in self.pids.items()}
        if self.postgres_pid is not None:
            snapshot["postgres"] = procstat.tree_cpu_seconds(self.postgres_pid)
        snapshot[MACHINE] = procstat.machine_busy_seconds()
        return snapshot

    def peak_rss_mib(self) -> dict[str, float | None]:
        peaks: dict[str, float | None] = {name: procstat.peak_rss_mib(pid) for name, pid in self.pids.items()}
        peaks["load generator"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return peaks


def git_revision() -> str:
    """The commit measured, and whether the working tree differed from it (outside bench/)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":!bench"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = len(status.splitlines())
    return f"{head} + {changed} uncommitted change(s)" if changed else head


def clean_environment() -> None:
    """Every setting is passed explicitly: nothing from the caller's environment may leak into the
    stack (the service processes inherit this environment), and tracing must point nowhere."""
    for var in [
        v
        for v in os.environ
        if v.startswith(("LANGFUSE_", "RUNLEDGER_", "TEMPORAL_")) or v in ("DATABASE_URL", ENV_VAR)
    ]:
        del os.environ[var]
