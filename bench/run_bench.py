"""runledger benchmark: what the product costs on top of bare Temporal, on one dev server, in one run.

Run it from the repository root (not part of the test suite)::

    .venv/bin/python -m bench.run_bench              # defaults: about 2-3 minutes on 2 cores
    .venv/bin/python -m bench.run_bench --help       # every knob (N, request count, rounds, tenants...)

What it measures (all on ONE in-memory Temporal dev server and ONE embedded Postgres, started here):

(a) API trigger latency: ``POST /api/v1/graphs/langgraph:poet/runs`` over real HTTP (uvicorn on a
    loopback port serving ``api.app.create_app``), ``--requests`` requests one after another after a
    warm-up, each with a fresh Idempotency-Key. The runs they start execute meanwhile, as they would in
    production. p50 / p90 / p99 / max.
(b) End-to-end throughput: ``--runs`` concurrent starts of the graph through the API, wall time from the
    first request until every run's workflow result is in (the run row is terminal in Postgres before
    the workflow completes, since the finalize step writes it), against a bare 1-activity Temporal
    workflow (no-op activity) started directly with the Temporal client: same N, same server, same
    worker process, same worker settings. Runs/s of both and the ratio graph/bare.
(c) Temporal history events per run (``fetch_history()`` of each run), graph vs bare.

Also: unloaded single-run latency with a per-step breakdown from the runs' histories (where the time
goes), CPU per run of every process per burst (and the rest of the machine's load, since the box may
be shared), each process's peak RSS, Postgres activity sampled during graph bursts (printed when
starts fail), and with ``--profile-worker`` a CPU profile of the worker.

Process arrangement (as in production and in feasibility §3): this process is the load generator
and owns the Temporal dev server (in-memory, started with ``WorkflowEnvironment.start_local``) and
Postgres (pgserver); the worker (``python -m bench.serve worker``, which also hosts the bare
baseline's worker) and the API (``python -m bench.serve api``) each run in their own process.
Results are printed as tables and written as JSON to ``bench/results/`` (git-ignored), together with
the two service processes' logs.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_OFFLINE_MODE"] = "true"

import argparse
import asyncio
import contextlib
import json
import math
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
import temporalio
from sqlalchemy import make_url
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench import procstat, profiling
from bench.bare import BareWorkflow
from bench.common import ENV_VAR, StackConfig
from db.migrate import upgrade
from runledger.binaries import temporal_cli
from runledger.contracts.runs import TERMINAL_STATUSES
from runledger.contracts.temporal import SEARCH_ATTRIBUTES

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PAYLOAD: dict[str, Any] = {"input": {"topic": "the sea"}}
TEMPORAL_PERSISTENCE = "in-memory (start_local without a db file)"


# --------------------------------------------------------------------------------------------------
# Small statistics and formatting helpers


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50": pct(ms, 50),
        "p90": pct(ms, 90),
        "p95": pct(ms, 95),
        "p99": pct(ms, 99),
        "max": max(ms) if ms else math.nan,
        "mean": statistics.fmean(ms) if ms else math.nan,
    }


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:,.1f}"
        return str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        first = values[0].ljust(widths[0])
        rest = [v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    print(f"\n{title}")
    print(line(list(headers)))
    print("  ".join("-" * w for w in widths))
    for row in text:
        print(line(row))


# --------------------------------------------------------------------------------------------------
# Run samples and their Temporal histories


@dataclass
class RunSample:
    workflow_id: str
    begun: float  # perf_counter() when the start request was sent
    run_id: str | None = None
    post_s: float | None = None  # API POST latency (graph runs only)
    done: float | None = None  # perf_counter() when the workflow result was in
    ok: bool = False
    error: str | None = None  # why the start failed (no run then)
    events: list[tuple[str, int]] = field(default_factory=list)  # (event type, event time in ns)

    @property
    def e2e_s(self) -> float:
        return (self.done or math.nan) - self.begun

    @property
    def server_s(self) -> float:
        """First to last history event: WorkflowExecutionStarted → WorkflowExecutionCompleted."""
        return (self.events[-1][1] - self.events[0][1]) / 1e9 if self.events else math.nan


def event_name(event_type: int) -> str:
    """EVENT_TYPE_WORKFLOW_TASK_SCHEDULED -> WorkflowTaskScheduled"""
    raw = EventType.Name(event_type).removeprefix("EVENT_TYPE_")  # type: ignore[arg-type]
    return "".join(part.capitalize() for part in raw.split("_"))


def short(name: str) -> str:
    return (
        name.replace("WorkflowExecution", "WF")
        .replace("WorkflowTask", "WFT ")
        .replace("ActivityTask", "Act ")
        .replace("MarkerRecorded", "Marker")
    )


#: What each history gap is, for the breakdown table.
STEP_MEANING = {
    ("WorkflowExecutionStarted", "WorkflowTaskScheduled"): "server schedules the first workflow task",
    ("WorkflowTaskScheduled", "WorkflowTaskStarted"): "workflow task waits for the worker (matching)",
    ("WorkflowTaskStarted", "WorkflowTaskCompleted"): "worker runs workflow code (+ local activities)",
    ("WorkflowTaskCompleted", "MarkerRecorded"): "local-activity marker (written with the completion)",
    ("MarkerRecorded", "ActivityTaskScheduled"): "activity scheduled (same completion)",
    ("WorkflowTaskCompleted", "ActivityTaskScheduled"): "activity scheduled (same completion)",
    ("ActivityTaskScheduled", "ActivityTaskStarted"): "activity waits for the worker (0 if eager)",
    ("ActivityTaskStarted", "ActivityTaskCompleted"): "activity body + completion round trip",
    ("ActivityTaskCompleted", "WorkflowTaskScheduled"): "server schedules the next workflow task",
    ("WorkflowTaskCompleted", "WorkflowExecutionCompleted"): "workflow closes (same completion)",
    ("MarkerRecorded", "WorkflowExecutionCompleted"): "workflow closes (same completion)",
}


async def fetch_histories(temporal: Client, samples: Sequence[RunSample], concurrency: int = 16) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(sample: RunSample) -> None:
        async with gate:
            history = await temporal.get_workflow_handle(sample.workflow_id).fetch_history()
        sample.events = [(event_name(e.event_type), e.event_time.ToNanoseconds()) for e in history.events]

    await asyncio.gather(*(one(s) for s in samples if s.workflow_id))


def breakdown(samples: Sequence[RunSample]) -> dict[str, Any]:
    """Median and p95 of every gap between consecutive history events, over the runs that share the
    most common event sequence (runs with retries or extra workflow tasks are counted, not mixed in)."""
    with_history = [s for s in samples if s.events]
    if not with_history:
        return {"sequence": [], "runs": 0, "of": 0, "steps": [], "other_sequences": []}
    sequences = Counter(tuple(name for name, _ in s.events) for s in with_history)
    sequence, count = sequences.most_common(1)[0]
    matching = [s for s in with_history if tuple(name for name, _ in s.events) == sequence]
    steps = []
    for i in range(1, len(sequence)):
        gaps = [(s.events[i][1] - s.events[i - 1][1]) / 1e6 for s in matching]
        steps.append(
            {
                "step": f"{short(sequence[i - 1])} -> {short(sequence[i])}",
                "meaning": STEP_MEANING.get((sequence[i - 1], sequence[i]), ""),
                "p50_ms": pct(gaps, 50),
                "p95_ms": pct(gaps, 95),
            }
        )
    others = [
        {"runs": n, "events": len(seq), "sequence": " ".join(short(name).replace(" ", "") for name in seq)}
        for seq, n in sequences.most_common()[1:4]
    ]
    return {
        "sequence": list(sequence),
        "runs": count,
        "of": len(with_history),
        "steps": steps,
        "other_sequences": others,
    }


def event_counts(samples: Sequence[RunSample]) -> dict[str, float]:
    counts = [len(s.events) for s in samples if s.events]
    if not counts:
        return {"min": math.nan, "median": math.nan, "max": math.nan}
    return {"min": min(counts), "median": statistics.median(counts), "max": max(counts)}


# --------------------------------------------------------------------------------------------------
# The stack: Postgres, Temporal, worker process, API process


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


# --------------------------------------------------------------------------------------------------
# The load generator


@dataclass
class Ctx:
    http: httpx.AsyncClient
    temporal: Client
    cfg: StackConfig
    graph_id: str
    tenants: list[dict[str, str]] = field(default_factory=list)  # each tenant's auth header
    _next: int = 0

    @property
    def run_path(self) -> str:
        return f"/api/v1/graphs/{self.graph_id}/runs"

    async def admin(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.http.post(
            path, json=body, headers={"Authorization": f"Bearer {self.cfg.admin_token}"}
        )
        if resp.status_code not in (200, 201):
            raise RuntimeError(f"POST {path} -> {resp.status_code}: {resp.text}")
        result: dict[str, Any] = resp.json()
        return result

    async def create_tenant(self, credits: int) -> None:
        user = await self.admin("/api/v1/admin/users", {"name": "bench"})
        await self.admin(
            f"/api/v1/admin/billing-accounts/{user['billing_account_id']}/credits",
            {"amount_credits": credits, "reference": f"bench-{uuid.uuid4()}"},
        )
        self.tenants.append({"Authorization": f"Bearer {user['api_key']}"})

    async def trigger(self) -> RunSample:
        """One API start (tenants in turn); returns when the POST has answered. A refused or timed-out
        start is recorded on the sample, not raised: it is a result of the benchmark."""
        auth = self.tenants[self._next % len(self.tenants)]
        self._next += 1
        headers = {**auth, "Idempotency-Key": f"bench-{uuid.uuid4()}"}
        begun = time.perf_counter()
        try:
            resp = await self.http.post(self.run_path, json=PAYLOAD, headers=headers)
        except httpx.HTTPError as exc:
            waited = time.perf_counter() - begun
            return RunSample(
                workflow_id="", begun=begun, error=f"{type(exc).__name__} (no answer in {waited:.0f} s)"
            )
        post_s = time.perf_counter() - begun
        if resp.status_code != 202:
            return RunSample(
                workflow_id="",
                begun=begun,
                post_s=post_s,
                error=f"HTTP {resp.status_code}: {resp.text[:120]}",
            )
        body = resp.json()
        return RunSample(workflow_id=body["workflow_id"], run_id=body["run_id"], begun=begun, post_s=post_s)

    async def finish(self, sample: RunSample) -> RunSample:
        result = await self.temporal.get_workflow_handle(sample.workflow_id).result()
        sample.done = time.perf_counter()
        sample.ok = result.get("status") == "success" if isinstance(result, dict) else result is not None
        return sample

    async def graph_run(self) -> RunSample:
        sample = await self.trigger()
        return sample if sample.error else await self.finish(sample)

    async def bare_run(self) -> RunSample:
        begun = time.perf_counter()
        handle = await self.temporal.start_workflow(
            BareWorkflow.run, 1, id=f"bench-bare-{uuid.uuid4()}", task_queue=self.cfg.bare_task_queue
        )
        sample = RunSample(workflow_id=handle.id, begun=begun)
        return await self.finish(sample)


async def sequential(n: int, one: Callable[[], Awaitable[RunSample]]) -> list[RunSample]:
    return [await one() for _ in range(n)]


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


PG_ACTIVITY = """
SELECT a.state, coalesce(a.wait_event_type || ':' || a.wait_event, '') AS waiting,
       left(regexp_replace(a.query, '\\s+', ' ', 'g'), 70) AS query, count(*) AS sessions,
       round(max(extract(epoch FROM now() - a.xact_start))::numeric, 2) AS oldest_xact_s,
       bool_or(EXISTS (SELECT 1 FROM pg_stat_activity b WHERE a.pid = ANY(pg_blocking_pids(b.pid))))
         AS blocks_others
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.state <> 'idle'
GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 8
"""


async def watch_postgres(database_url: str, every_s: float, into: list[dict[str, Any]]) -> None:
    """Every ``every_s``, what the database's busy sessions are doing: a stalled burst shows who waits
    on whom (``blocks_others``) without attaching a debugger."""
    begun = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while True:
            await asyncio.sleep(every_s)
            cur = await conn.execute(PG_ACTIVITY)
            rows = [
                {
                    "state": r[0],
                    "waiting": r[1],
                    "query": r[2],
                    "sessions": int(r[3]),
                    "oldest_xact_s": float(r[4] or 0),
                    "blocks_others": bool(r[5]),
                }
                for r in await cur.fetchall()
            ]
            into.append({"at_s": round(time.perf_counter() - begun, 1), "sessions": rows})


async def burst(
    kind: str,
    n: int,
    one: Callable[[], Awaitable[RunSample]],
    procs: Processes,
    database_url: str | None = None,
) -> tuple[dict[str, Any], list[RunSample]]:
    """N concurrent runs; with ``database_url``, Postgres activity is sampled every 5 s meanwhile."""
    activity: list[dict[str, Any]] = []
    watcher = asyncio.create_task(watch_postgres(database_url, 5, activity)) if database_url else None
    cpu_before = procs.cpu()
    wall_begun = datetime.now(UTC)
    t0 = time.perf_counter()
    try:
        samples = await asyncio.gather(*(one() for _ in range(n)))
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                await watcher
    wall = time.perf_counter() - t0
    cpu_after = procs.cpu()
    cpu = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
    completed = sum(s.ok for s in samples)
    result: dict[str, Any] = {
        "kind": kind,
        "n": n,
        "wall_s": wall,
        "runs_per_s": completed / wall,
        "completed": completed,
        "failed": n - completed,
        "start_errors": dict(Counter(s.error for s in samples if s.error)),
        "started_at": wall_begun.isoformat(),
        "client_e2e_ms": summary_ms([s.e2e_s for s in samples if s.ok]),
        "cpu_s": cpu,
    }
    if kind != "bare":
        result["post_ms"] = summary_ms([s.post_s for s in samples if s.post_s is not None])
    if database_url:
        result["postgres_activity"] = activity
    return result, list(samples)


async def postgres_check(database_url: str, samples: Sequence[RunSample]) -> dict[str, Any]:
    """Status of the given runs in Postgres, their cost, and the created → completed span."""
    run_ids = [s.run_id for s in samples if s.run_id]
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            """
            SELECT status, count(*), coalesce(sum(model_calls), 0), coalesce(sum(cost_credits), 0),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)),
                   max(completed_at)
            FROM graph_runs WHERE run_id = ANY(%s::uuid[]) GROUP BY status
            """,
            (run_ids,),
        )
        rows = await cur.fetchall()
        cur = await conn.execute(
            """
            SELECT status, error_code, left(error_message, 160), count(*) FROM graph_runs
            WHERE run_id = ANY(%s::uuid[]) AND status <> 'success' GROUP BY 1, 2, 3 ORDER BY 4 DESC
            """,
            (run_ids,),
        )
        failures = [
            {"status": r[0], "error_code": r[1], "error_message": r[2], "runs": int(r[3])}
            for r in await cur.fetchall()
        ]
    by_status = {row[0]: int(row[1]) for row in rows}
    return {
        "runs": len(run_ids),
        "by_status": by_status,
        "all_terminal": sum(by_status.get(s, 0) for s in TERMINAL_STATUSES) == len(run_ids),
        "model_calls": sum(int(row[2]) for row in rows),
        "charged_credits": sum(int(row[3]) for row in rows),
        "created_to_completed_p50_ms": (
            float(rows[0][4]) * 1000 if len(rows) == 1 and rows[0][4] else math.nan
        ),
        "last_completed_at": max((row[5] for row in rows if row[5] is not None), default=None),
        "not_successful": failures,
    }


async def run_benchmark(
    args: argparse.Namespace, database_url: str, postgres_pid: int | None
) -> dict[str, Any]:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = args.stamp
    setup_begun = time.perf_counter()
    temporal_env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=list(SEARCH_ATTRIBUTES),
        ui=False,
        dev_server_log_level="error",
    )
    services: list[Service] = []
    try:
        temporal = temporal_env.client
        cfg = StackConfig(
            database_url=database_url,
            temporal_address=temporal.service_client.config.target_host,
            task_queue=f"bench-{uuid.uuid4().hex[:8]}",
            bare_task_queue=f"bench-bare-{uuid.uuid4().hex[:8]}",
            admin_token=secrets.token_urlsafe(24),
            api_port=free_port(),
        )
        env = service_environment(bytecode_cache=not args.no_bytecode_cache)
        worker_env = {**env, profiling.ENV_VAR: str(args.profile_path)} if args.profile_worker else env
        worker, api = await asyncio.gather(
            start_service("worker", cfg, RESULTS_DIR / f"{stamp}-worker.log", worker_env),
            start_service("api", cfg, RESULTS_DIR / f"{stamp}-api.log", env),
        )
        services = [worker, api]
        pids = {"load generator": os.getpid(), "api": api.pid, "worker": worker.pid}
        server_pid = procstat.child_by_exe(os.getpid(), Path(temporal_cli()).name)
        if server_pid is not None:
            pids["temporal server"] = server_pid
        procs = Processes(pids, postgres_pid)

        limits = httpx.Limits(max_connections=args.runs + 10, max_keepalive_connections=args.runs + 10)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{cfg.api_port}", timeout=60, limits=limits
        ) as http:
            ready = await http.get("/readyz")
            if ready.status_code != 200:
                raise RuntimeError(f"API not ready: {ready.text}")
            ctx = Ctx(http=http, temporal=temporal, cfg=cfg, graph_id=args.graph)
            for _ in range(args.tenants):
                await ctx.create_tenant(credits=10**12)
            setup_s = time.perf_counter() - setup_begun
            print(
                f"stack up in {setup_s:.1f} s "
                f"(worker pid {worker.pid}, api pid {api.pid}, API port {cfg.api_port})"
            )

            limit = args.timeout
            # Warm-up: connections, imports on first use, caches, both task queues.
            async with phase("warm-up", limit, services):
                await sequential(args.warmup, ctx.graph_run)
                await sequential(args.warmup, ctx.bare_run)
            print(f"warm-up done ({args.warmup} {args.graph} + {args.warmup} bare runs)")

            # Unloaded single runs, one at a time: per-run latency and where it goes.
            async with phase("single runs", limit, services):
                single_graph = await sequential(args.single, ctx.graph_run)
                single_bare = await sequential(args.single, ctx.bare_run)
                await fetch_histories(temporal, single_graph + single_bare)
            print(f"single runs done ({args.single} each)")

            # (a) API trigger latency, sequential; the triggered runs execute meanwhile.
            async with phase("trigger latency", limit, services):
                trigger_begun = time.perf_counter()
                triggered = await sequential(args.requests, ctx.trigger)
                trigger_wall = time.perf_counter() - trigger_begun
                await asyncio.gather(*(ctx.finish(s) for s in triggered if not s.error))
                drain_s = time.perf_counter() - trigger_begun - trigger_wall
            trigger = {
                "requests": args.requests,
                "post_ms": summary_ms([s.post_s for s in triggered if s.post_s is not None]),
                "requests_per_s": args.requests / trigger_wall,
                "drain_after_last_post_s": drain_s,
                "failed_runs": sum(not s.ok for s in triggered),
                "start_errors": dict(Counter(s.error for s in triggered if s.error)),
            }
            print(f"trigger latency done ({args.requests} requests)")

            # (b) + (c): bursts, graph then bare, per round.
            rounds: list[dict[str, Any]] = []
            burst_graph: list[RunSample] = []
            burst_bare: list[RunSample] = []
            for number in range(1, args.rounds + 1):
                async with phase(f"{args.graph} burst {number}", limit, services):
                    graph_result, graph_samples = await burst(
                        args.graph, args.runs, ctx.graph_run, procs, database_url
                    )
                    await fetch_histories(temporal, graph_samples)
                    graph_result["postgres"] = await postgres_check(database_url, graph_samples)
                async with phase(f"bare burst {number}", limit, services):
                    bare_result, bare_samples = await burst("bare", args.runs, ctx.bare_run, procs)
                    await fetch_histories(temporal, bare_samples)
                for result, samples in ((graph_result, graph_samples), (bare_result, bare_samples)):
                    result["server_latency_ms"] = summary_ms([s.server_s for s in samples])
                    result["history_events"] = event_counts(samples)
                last = graph_result["postgres"].pop("last_completed_at")
                if last is not None:
                    graph_result["postgres"]["wall_until_last_terminal_in_postgres_s"] = (
                        last - datetime.fromisoformat(graph_result["started_at"])
                    ).total_seconds()
                rounds.append(
                    {
                        "round": number,
                        "graph": graph_result,
                        "bare": bare_result,
                        "ratio": graph_result["runs_per_s"] / bare_result["runs_per_s"],
                    }
                )
                burst_graph += graph_samples
                burst_bare += bare_samples
                print(
                    f"round {number}: {args.graph} {graph_result['runs_per_s']:.1f} runs/s, "
                    f"bare {bare_result['runs_per_s']:.1f} runs/s"
                )

            all_graph_runs = single_graph + triggered + burst_graph
            ledger = await postgres_check(database_url, all_graph_runs)
            ledger.pop("last_completed_at")
            peak_rss = procs.peak_rss_mib()
    finally:
        for service in services:
            await service.stop()
        await temporal_env.shutdown()

    return {
        "setup_s": setup_s,
        "single": {
            "graph": {
                "client_e2e_ms": summary_ms([s.e2e_s for s in single_graph]),
                "server_ms": summary_ms([s.server_s for s in single_graph]),
                "post_ms": summary_ms([s.post_s for s in single_graph if s.post_s is not None]),
                "history_events": event_counts(single_graph),
                "breakdown": breakdown(single_graph),
            },
            "bare": {
                "client_e2e_ms": summary_ms([s.e2e_s for s in single_bare]),
                "server_ms": summary_ms([s.server_s for s in single_bare]),
                "history_events": event_counts(single_bare),
                "breakdown": breakdown(single_bare),
            },
        },
        "trigger": trigger,
        "rounds": rounds,
        "burst_breakdown": {"graph": breakdown(burst_graph), "bare": breakdown(burst_bare)},
        "ledger_check": ledger,
        "peak_rss_mib": peak_rss,
        "service_logs": [str(s.log_path) for s in services],
    }


# --------------------------------------------------------------------------------------------------
# Report


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    graph = args.graph
    print(
        f"\n=== runledger benchmark: {graph} vs bare Temporal, {os.cpu_count()} CPUs, "
        f"Temporal dev server {TEMPORAL_PERSISTENCE}, worker and API each in their own process ==="
    )
    print(
        f"code: {results['machine']['git']}; bytecode: {results['machine']['bytecode_cache']}; "
        f"API starts spread over {args.tenants} tenant(s)"
    )
    t = results["trigger"]["post_ms"]
    print_table(
        f"(a) API trigger latency, POST {'/api/v1/graphs/' + graph + '/runs'} over loopback HTTP, "
        f"{t['n']} sequential requests after warm-up (ms)",
        ["", "p50", "p90", "p99", "max", "mean"],
        [["POST latency", t["p50"], t["p90"], t["p99"], t["max"], t["mean"]]],
    )
    print(
        f"    {results['trigger']['requests_per_s']:.1f} requests/s sequentially; the triggered runs "
        f"finished {results['trigger']['drain_after_last_post_s']:.1f} s after the last POST "
        f"({results['trigger']['failed_runs']} failed)"
    )
    for error, count in results["trigger"]["start_errors"].items():
        print(f"    {count} start(s) failed: {error}")

    rows: list[list[object]] = []
    for r in results["rounds"]:
        g, b = r["graph"], r["bare"]
        rows.append(
            [
                f"round {r['round']}",
                g["n"],
                g["wall_s"],
                g["runs_per_s"],
                b["wall_s"],
                b["runs_per_s"],
                f"{r['ratio']:.2f}",
                g["failed"] + b["failed"],
            ]
        )
    if len(results["rounds"]) > 1:
        ratios = [r["ratio"] for r in results["rounds"]]
        rows.append(
            [
                "median",
                "",
                "",
                statistics.median(r["graph"]["runs_per_s"] for r in results["rounds"]),
                "",
                statistics.median(r["bare"]["runs_per_s"] for r in results["rounds"]),
                f"{statistics.median(ratios):.2f}",
                "",
            ]
        )
    print_table(
        f"(b) end-to-end throughput, N concurrent starts until every run is terminal ({graph} through the "
        "API; bare 1-activity workflow through the Temporal client)",
        ["", "N", f"{graph} wall s", f"{graph} runs/s", "bare wall s", "bare runs/s", "ratio", "failed"],
        rows,
    )
    for r in results["rounds"]:
        for label, part in ((graph, r["graph"]), ("bare", r["bare"])):
            for error, count in part.get("start_errors", {}).items():
                print(f"    round {r['round']} {label}: {count} start(s) failed: {error}")
            if part.get("start_errors") and part.get("postgres_activity"):
                print("    busy Postgres sessions during that burst (every 5 s; * = blocks other sessions):")
                for snap in part["postgres_activity"]:
                    for row in snap["sessions"]:
                        print(
                            f"      t+{snap['at_s']:>5.1f}s {row['sessions']:>3} {row['state']:<19} "
                            f"{row['waiting']:<26} {row['oldest_xact_s']:>6.2f}s "
                            f"{'*' if row['blocks_others'] else ' '} {row['query']}"
                        )
    last = results["rounds"][-1]
    lat_rows: list[list[object]] = []
    for label, part in ((graph, last["graph"]), ("bare", last["bare"])):
        s = part["server_latency_ms"]
        c = part["client_e2e_ms"]
        lat_rows.append([label, s["p50"], s["p95"], s["p99"], c["p50"], c["p95"]])
    if "post_ms" in last["graph"]:
        p = last["graph"]["post_ms"]
        lat_rows.append([f"{graph} POST only", "", "", "", p["p50"], p["p95"]])
    print_table(
        "    per-run latency under the last burst (ms; server = WF started -> WF completed in history, "
        "client = start request -> result)",
        ["", "server p50", "server p95", "server p99", "client p50", "client p95"],
        lat_rows,
    )
    pg = last["graph"]["postgres"]
    print(
        f"    Postgres after the last {graph} burst: {pg['by_status']}, last run terminal "
        f"{pg.get('wall_until_last_terminal_in_postgres_s', math.nan):.2f} s after the first POST"
    )

    sg, sb = results["single"]["graph"], results["single"]["bare"]
    bg, bb = last["graph"]["history_events"], last["bare"]["history_events"]
    print_table(
        "(c) Temporal history events per run",
        ["", "single runs (min/median/max)", "burst runs (min/median/max)"],
        [
            [graph, _mmm(sg["history_events"]), _mmm(bg)],
            ["bare", _mmm(sb["history_events"]), _mmm(bb)],
        ],
    )

    for label, key in ((graph, "graph"), ("bare", "bare")):
        for where, part in (
            ("single", results["single"][key]["breakdown"]),
            ("burst", results["burst_breakdown"][key]),
        ):
            for other in part["other_sequences"]:
                print(
                    f"    {label}, {where} runs: {other['runs']} of {part['of']} "
                    f"had {other['events']} events: "
                    f"{other['sequence']}"
                )

    print_table(
        f"single runs, one at a time on an idle stack ({args.single} each; ms)",
        ["", "client p50", "client p95", "server p50", "server p95", "POST p50"],
        [
            [
                graph,
                sg["client_e2e_ms"]["p50"],
                sg["client_e2e_ms"]["p95"],
                sg["server_ms"]["p50"],
                sg["server_ms"]["p95"],
                sg["post_ms"]["p50"],
            ],
            [
                "bare",
                sb["client_e2e_ms"]["p50"],
                sb["client_e2e_ms"]["p95"],
                sb["server_ms"]["p50"],
                sb["server_ms"]["p95"],
                "",
            ],
        ],
    )
    for label, key in ((graph, "graph"), ("bare", "bare")):
        single = results["single"][key]["breakdown"]
        loaded = results["burst_breakdown"][key]
        same = loaded["sequence"] == single["sequence"]
        step_rows: list[list[object]] = [
            [
                s["step"],
                s["p50_ms"],
                s["p95_ms"],
                loaded["steps"][i]["p50_ms"] if same else "",
                loaded["steps"][i]["p95_ms"] if same else "",
                s["meaning"],
            ]
            for i, s in enumerate(single["steps"])
        ]
        print_table(
            f"where a {label} run's time goes: gaps between its history events (ms; idle = "
            f"{single['runs']}/{single['of']} single runs, burst = {loaded['runs']}/{loaded['of']} "
            "burst runs with the same event sequence)",
            ["step", "idle p50", "idle p95", "burst p50", "burst p95", "what it is"],
            step_rows,
        )
        if loaded["sequence"] != single["sequence"]:
            print(f"    (the burst's most common sequence differs: {[short(n) for n in loaded['sequence']]})")

    cpu_rows: list[list[object]] = []
    for r in results["rounds"]:
        for label, part in ((graph, r["graph"]), ("bare", r["bare"])):
            cpu = part["cpu_s"]
            ours = sum(cpu.get(p, 0.0) for p in PROC_ORDER)
            others = max(cpu.get(MACHINE, 0.0) - ours, 0.0)
            cpu_rows.append(
                [
                    f"round {r['round']} {label}",
                    part["wall_s"],
                    *(cpu.get(p, math.nan) * 1000 / part["n"] for p in PROC_ORDER),
                    ours * 1000 / part["n"],
                    ours / part["wall_s"],
                    others / part["wall_s"],
                ]
            )
    print_table(
        "CPU per run, by process, during each burst (CPU-ms per run = the process's CPU over the burst / N; "
        "cores = CPU-s / wall s: 'bench' = these processes, 'others' = everything else on the machine, "
        f"which has {os.cpu_count()} cores)",
        ["burst", "wall s", *PROC_ORDER, "total", "bench cores", "others cores"],
        cpu_rows,
    )
    load = results["load_average"]
    print(f"    load average (1 min) before the run {load['before'][0]:.2f}, after {load['after'][0]:.2f}")
    rss = results["peak_rss_mib"]
    print_table(
        "peak RSS (VmHWM, MiB; Postgres is multi-process with shared buffers, so not summed here)",
        list(rss),
        [[rss[name] if rss[name] is not None else math.nan for name in rss]],
    )
    profile = results.get("worker_profile")
    if profile:
        print_table(
            f"worker CPU profile, whole run ({profile['total_cpu_s']:.1f} CPU-s, thread CPU clocks; "
            "PROFILED RUN: its runs/s above are not comparable): own CPU by package",
            ["package", "CPU s", "share %"],
            [[p["package"], p["cpu_s"], p["share"] * 100] for p in profile["by_package"]],
        )
        by_thread = dict(profile["by_thread"])
        instances = by_thread.pop("workflow instances created", 0)
        print_table(
            f"    CPU by kind of work ({instances:g} workflow instances created)",
            ["work", "CPU s", "share %"],
            [
                [name, secs, secs / profile["total_cpu_s"] * 100]
                for name, secs in sorted(by_thread.items(), key=lambda item: -item[1])
            ],
        )
        print_table(
            "    functions with the most own CPU",
            ["function", "own CPU s", "cumulative s", "calls"],
            [
                [f["function"], f["own_cpu_s"], f["cumulative_s"], f["calls"]]
                for f in profile["top_functions"]
            ],
        )
        print(f"    full profile: {profile['pstats']} (python -m pstats)")
    ledger = results["ledger_check"]
    print(
        f"\nledger check over all {ledger['runs']} {graph} runs: {ledger['by_status']}, "
        f"{ledger['model_calls']} model calls, {ledger['charged_credits']} credits charged"
    )
    for failure in ledger["not_successful"]:
        print(
            f"    {failure['runs']} run(s) {failure['status']}: "
            f"{failure['error_code']}: {failure['error_message']}"
        )


PROC_ORDER = ["load generator", "api", "worker", "temporal server", "postgres"]
#: The whole machine's busy CPU, so that other processes' load on a shared box is visible.
MACHINE = "machine"


def _mmm(counts: dict[str, float]) -> str:
    return f"{counts['min']:g} / {counts['median']:g} / {counts['max']:g}"


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


def bytecode_mode(args: argparse.Namespace) -> str:
    if not args.no_bytecode_cache:
        return f"service processes cache .pyc under {PYCACHE_PREFIX}"
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return "off: PYTHONDONTWRITEBYTECODE is set, every import compiles from source"
    return "the caller's default"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run_bench",
        description="runledger benchmark: API trigger latency, end-to-end runs/s against bare Temporal, "
        "history events per run.",
    )
    parser.add_argument("--requests", type=int, default=200, help="sequential POSTs for (a) (default 200)")
    parser.add_argument(
        "--runs", "-n", type=int, default=200, help="concurrent runs per burst for (b) (default 200)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="graph/bare burst pairs (default 2)")
    parser.add_argument("--single", type=int, default=20, help="one-at-a-time runs of each kind (default 20)")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up runs of each kind (default 10)")
    parser.add_argument(
        "--tenants",
        type=int,
        default=1,
        help="users (billing accounts) the API starts are spread over, in turn (default 1)",
    )
    parser.add_argument("--graph", default="langgraph:poet", help="graph to start (default langgraph:poet)")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help=f"do not give the service processes a .pyc cache ({PYCACHE_PREFIX}); with "
        "PYTHONDONTWRITEBYTECODE set, every import then compiles from source",
    )
    parser.add_argument(
        "--profile-worker",
        action="store_true",
        help="CPU-profile the worker process (cProfile per thread; slows it down, so its runs/s are not "
        "comparable) and print where its CPU goes",
    )
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds allowed for each phase (default 300)"
    )
    args = parser.parse_args(argv)
    for name in ("requests", "runs", "rounds", "single", "warmup", "tenants"):
        if getattr(args, name) < (0 if name == "warmup" else 1):
            parser.error(f"--{name} is too small")
    args.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.profile_path = RESULTS_DIR / f"{args.stamp}-worker.pstats"
    return args


def clean_environment() -> None:
    """Every setting is passed explicitly: nothing from the caller's environment may leak into the
    stack (the service processes inherit this environment), and tracing must point nowhere."""
    for var in [
        v
        for v in os.environ
        if v.startswith(("LANGFUSE_", "RUNLEDGER_", "TEMPORAL_")) or v in ("DATABASE_URL", ENV_VAR)
    ]:
        del os.environ[var]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    clean_environment()
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from pgserver.postgres_server import get_server

    load_before = procstat.load_average()
    pgdata = tempfile.mkdtemp(prefix="rl-bench-pg-")
    server = get_server(pgdata, cleanup_mode=None)
    postgres_pid = server.get_pid()
    try:
        database_url = create_database(server.get_uri())
        upgrade(database_url)
        results = asyncio.run(run_benchmark(args, database_url, int(postgres_pid) if postgres_pid else None))
    finally:
        server.cleanup()  # with cleanup_mode=None this does not stop the server (feasibility §9.9)
        if postgres_pid and not procstat.stop_process(int(postgres_pid), signal.SIGINT, 15):
            print(f"warning: Postgres (pid {postgres_pid}) did not stop")
        shutil.rmtree(pgdata, ignore_errors=True)

    results = {
        "benchmark": "runledger",
        "load_average": {"before": load_before, "after": procstat.load_average()},
        "at": args.stamp,
        "config": {k: v for k, v in vars(args).items() if k not in ("stamp", "profile_path")},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "temporalio": temporalio.__version__,
            "temporal_server": TEMPORAL_PERSISTENCE,
            "bytecode_cache": bytecode_mode(args),
            "git": git_revision(),
            "processes": "load generator (owns the Temporal dev server and Postgres); "
            "worker and API each in their own process",
        },
        **results,
    }
    if args.profile_worker and args.profile_path.exists():
        results["worker_profile"] = {
            "pstats": str(args.profile_path),
            **profiling.summarize(args.profile_path, REPO_ROOT),
        }
    report(args, results)
    out = RESULTS_DIR / f"bench-{args.stamp}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    try:
        code = main()
    finally:
        # Temporal's core runtime can abort the interpreter at exit (feasibility §9.1).
        time.sleep(0.5)
    sys.exit(code)
