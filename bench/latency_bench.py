"""runledger at real model latency, against bare Temporal, on one dev server, in one run.

Run it from the repository root (``make bench-latency``; not part of the test suite)::

    .venv/bin/python -m bench.latency_bench                       # 600 runs, 1 s per call, 100 chunks
    .venv/bin/python -m bench.latency_bench --workers 1 2         # 1 vs 2 worker processes
    .venv/bin/python -m bench.latency_bench --scale 1000 5000 10000 --delay 0 --chunks 5

What it sets up: an embedded Postgres (pgserver, migrated by Alembic), an in-memory Temporal dev
server, a fake OpenAI-compatible provider in its own process (``bench.slow_provider``: waits
``--delay`` seconds, then streams ``--chunks`` chunks with matching usage), the API process and one
or more worker processes (``bench.serve``), configured the way the README configures a real
provider (``RUNLEDGER_DEFAULT_MODEL`` = a LiteLLM-priced OpenAI model, ``RUNLEDGER_MODEL_API_BASE``
= the fake). Every run is billed through LiteLLM's real code path.

Phases, per worker count in ``--workers``:

- **graph burst**: ``--runs`` runs of ``--graph`` started through the API by ``--clients`` concurrent
  HTTP clients (a burst, like a traffic spike), each awaited to its workflow result;
- **bare burst** (once): the same number of bare Temporal workflows, each one activity that sleeps
  ``--delay`` seconds, on a worker with an activity slot per run, same server, same worker process.

It prints time to all terminal, runs/s and the ratio to bare, peak concurrent model calls (counted
at the provider), p50/p99 trigger → terminal, starts/s, CPU seconds and peak RSS per process, then
prints where a run's time went (``bench.phases``: queued, to the first call, at the provider, to
the end; the Temporal steps inside queued from a sample of histories) and bare Temporal's peak of
activities running at once, then checks the ledger: every run ``success``, receipts == settled
model calls, no duplicate receipts, balance == the ledger's sum. It exits 1 when a check fails.

``--scale N ...`` runs bursts of N runs one after another on one stack (the table grows) and prints
per-run worker CPU and wall time for each N, and the p50 of ``GET /api/v1/runs`` with that many runs in
the table: the cost per run must not grow with the table. ``--in-flight N`` keeps at most N runs open
at once (a steady stream rather than a burst), so the figures measure the table's growth, not a
worker holding 10,000 open runs at once.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_OFFLINE_MODE"] = "true"

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import signal
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench import procstat, profiling
from bench.bare import SleepWorkflow
from bench.common import StackConfig
from bench.latency_report import print_profile, report
from bench.load import PAYLOAD, RESULT_WAITERS
from bench.phases import peak_activities, queue_phases, run_phases
from bench.services import (
    REPO_ROOT,
    RESULTS_DIR,
    Processes,
    Service,
    clean_environment,
    create_database,
    free_port,
    git_revision,
    phase,
    service_environment,
    start_service,
)
from bench.stats import pct
from db.migrate import upgrade
from runledger.binaries import temporal_cli
from runledger.contracts.temporal import SEARCH_ATTRIBUTES

#: Priced by LiteLLM's bundled cost map, so usage and cost take its real code path.
MODEL = "openai/gpt-4o-mini"


@dataclass
class Sample:
    begun: float
    run_id: str | None = None
    started: float | None = None  # the POST answered
    done: float | None = None
    status: str | None = None
    error: str | None = None


async def start_provider(args: argparse.Namespace, log_path: Path) -> tuple[asyncio.subprocess.Process, str]:
    log = log_path.open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.slow_provider",
        "--delay",
        str(args.delay),
        "--chunks",
        str(args.chunks),
        cwd=REPO_ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    log.close()
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode().split()
    if not line or line[0] != "ready":
        raise RuntimeError(f"the fake provider did not start; see {log_path}")
    return proc, f"http://127.0.0.1:{line[1]}/v1"


async def provider_stats(http: httpx.AsyncClient, base: str, *, reset: bool = False) -> dict[str, int]:
    url = base.removesuffix("/v1") + "/stats"
    resp = await (http.post(url) if reset else http.get(url))
    stats: dict[str, int] = resp.json()
    return stats


class Load:
    """The load generator: API starts by ``clients`` concurrent clients, results from Temporal."""

    def __init__(self, http: httpx.AsyncClient, temporal: Client, graph: str, auth: dict[str, str]) -> None:
        self.http = http
        self.temporal = temporal
        self.graph = graph
        self.auth = auth
        self.waiters = asyncio.Semaphore(RESULT_WAITERS)

    async def start(self, sample: Sample) -> None:
        headers = {**self.auth, "Idempotency-Key": f"lat-{uuid.uuid4()}"}
        try:
            resp = await self.http.post(f"/api/v1/graphs/{self.graph}/runs", json=PAYLOAD, headers=headers)
        except httpx.HTTPError as exc:
            sample.error = type(exc).__name__
            return
        sample.started = time.perf_counter()
        if resp.status_code != 202:
            sample.error = f"HTTP {resp.status_code}"
            return
        sample.run_id = resp.json()["run_id"]

    async def finish(self, sample: Sample) -> None:
        if sample.run_id is None:
            return
        async with self.waiters:
            result = await self.temporal.get_workflow_handle(f"graph-run:{sample.run_id}").result()
            sample.done = time.perf_counter()
        sample.status = result.get("status") if isinstance(result, dict) else None

    async def burst(self, n: int, clients: int, in_flight: int | None = None) -> tuple[list[Sample], float]:
        """N starts through ``clients`` concurrent clients; each run awaited once started.

        With ``in_flight``, a client starts a run only while fewer than that many are open (started,
        not yet terminal): a steady stream instead of one burst.
        """
        queue: asyncio.Queue[Sample] = asyncio.Queue()
        samples = [Sample(begun=0.0) for _ in range(n)]
        for s in samples:
            queue.put_nowait(s)
        finishing: list[asyncio.Task[None]] = []
        open_runs = asyncio.Semaphore(in_flight) if in_flight else None

        async def finish(sample: Sample) -> None:
            try:
                await self.finish(sample)
            finally:
                if open_runs is not None:
                    open_runs.release()

        async def client() -> None:
            while not queue.empty():
                sample = queue.get_nowait()
                if open_runs is not None:
                    await open_runs.acquire()
                sample.begun = time.perf_counter()
                await self.start(sample)
                finishing.append(asyncio.create_task(finish(sample)))

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        starts_s = time.perf_counter() - t0
        await asyncio.gather(*finishing)
        return samples, starts_s


async def bare_burst(
    temporal: Client, cfg: StackConfig, n: int, delay: float
) -> tuple[float, list[float], list[str]]:
    """N bare workflows started at once; the wall time, each one's latency, their workflow ids."""
    waiters = asyncio.Semaphore(RESULT_WAITERS)
    ids = [f"bench-sleep-{uuid.uuid4()}" for _ in range(n)]

    async def one(workflow_id: str) -> float:
        begun = time.perf_counter()
        handle = await temporal.start_workflow(
            SleepWorkflow.run, delay, id=workflow_id, task_queue=cfg.bare_task_queue
        )
        async with waiters:
            await handle.result()
            return time.perf_counter() - begun

    t0 = time.perf_counter()
    latencies = await asyncio.gather(*(one(workflow_id) for workflow_id in ids))
    return time.perf_counter() - t0, list(latencies), ids


LEDGER_CHECK = """
SELECT
  (SELECT count(*) FROM graph_runs WHERE run_id = ANY(%(ids)s::uuid[]) AND status = 'success'),
  (SELECT count(*) FROM charge_receipts WHERE run_id = ANY(%(ids)s::uuid[])),
  (SELECT count(*) FROM model_calls WHERE run_id = ANY(%(ids)s::uuid[]) AND status = 'settled'),
  (SELECT count(*) FROM model_calls WHERE run_id = ANY(%(ids)s::uuid[]) AND status <> 'settled'),
  (SELECT count(*) - count(DISTINCT (source_system, source_reference)) FROM charge_receipts),
  (SELECT count(*) FROM billing_accounts a
     WHERE a.balance_credits <> coalesce((SELECT sum(amount) FROM credit_ledger l
                                          WHERE l.billing_account_id = a.id), 0))
"""


async def ledger_check(database_url: str, run_ids: list[str]) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(LEDGER_CHECK, {"ids": run_ids})
        row = await cur.fetchone()
    assert row is not None
    keys = (
        "success",
        "receipts",
        "settled_calls",
        "unsettled_calls",
        "duplicate_receipts",
        "drifted_accounts",
    )
    return dict(zip(keys, (int(v) for v in row), strict=True))


def check_failures(runs: int, check: dict[str, int]) -> list[str]:
    problems = []
    if check["success"] != runs:
        problems.append(f"{runs - check['success']} of {runs} runs did not succeed")
    if check["receipts"] != check["settled_calls"]:
        problems.append(f"receipts {check['receipts']} != settled calls {check['settled_calls']}")
    if check["unsettled_calls"]:
        problems.append(f"{check['unsettled_calls']} model calls are not settled")
    if check["duplicate_receipts"]:
        problems.append(f"{check['duplicate_receipts']} duplicate receipts")
    if check["drifted_accounts"]:
        problems.append(f"{check['drifted_accounts']} accounts whose balance != the ledger's sum")
    return problems


async def list_runs_p50(http: httpx.AsyncClient, auth: dict[str, str], samples: int = 30) -> float:
    took = []
    for _ in range(samples):
        t0 = time.perf_counter()
        resp = await http.get("/api/v1/runs", params={"limit": 50}, headers=auth)
        took.append(time.perf_counter() - t0)
        resp.raise_for_status()
    return pct(took, 50) * 1000


async def run(args: argparse.Namespace, database_url: str, postgres_pid: int | None) -> dict[str, Any]:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = args.stamp
    temporal_env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=list(SEARCH_ATTRIBUTES),
        ui=False,
        dev_server_log_level="error",
        dev_server_extra_args=[a for kv in args.temporal_config for a in ("--dynamic-config-value", kv)],
    )
    provider, provider_url = await start_provider(args, RESULTS_DIR / f"{stamp}-provider.log")
    services: list[Service] = []
    workers: list[Service] = []
    results: dict[str, Any] = {"graph": [], "scale": []}
    problems: list[str] = []
    try:
        temporal = temporal_env.client
        cfg = StackConfig(
            database_url=database_url,
            temporal_address=temporal.service_client.config.target_host,
            task_queue=f"lat-{uuid.uuid4().hex[:8]}",
            bare_task_queue=f"lat-bare-{uuid.uuid4().hex[:8]}",
            admin_token=secrets.token_urlsafe(24),
            api_port=free_port(),
            default_model=MODEL,
            model_api_base=provider_url,
            bare_max_activities=max([args.runs, *args.scale]) + 10,
            env=dict(kv.split("=", 1) for kv in args.env),
        )
        env = service_environment(bytecode_cache=True)
        api = await start_service("api", cfg, RESULTS_DIR / f"{stamp}-api.log", env)
        services.append(api)
        server_pid = procstat.child_by_exe(os.getpid(), Path(temporal_cli()).name)
        limits = httpx.Limits(max_connections=args.clients + 20, max_keepalive_connections=args.clients + 20)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{cfg.api_port}", timeout=120, limits=limits
        ) as http:
            admin = {"Authorization": f"Bearer {cfg.admin_token}"}
            user = (await http.post("/api/v1/admin/users", json={"name": "bench"}, headers=admin)).json()
            await http.post(
                f"/api/v1/admin/billing-accounts/{user['billing_account_id']}/credits",
                json={"amount_credits": 10**13, "reference": "bench"},
                headers=admin,
            )
            auth = {"Authorization": f"Bearer {user['api_key']}"}
            load = Load(http, temporal, args.graph, auth)
            all_ids: list[str] = []
            for count in args.workers:
                workers = [
                    await start_service(
                        "worker",
                        cfg,
                        RESULTS_DIR / f"{stamp}-worker{i}.log",
                        {**env, profiling.ENV_VAR: str(RESULTS_DIR / f"{stamp}-worker{i}-{count}.pstats")}
                        if args.profile_worker
                        else env,
                    )
                    for i in range(count)
                ]
                services += workers
                pids = {"api": api.pid, **{f"worker {i + 1}": w.pid for i, w in enumerate(workers)}}
                pids["provider"] = provider.pid
                if server_pid is not None:
                    pids["temporal server"] = server_pid
                procs = Processes(pids, postgres_pid)
                async with phase("warm-up", args.timeout, services):
                    warm, _ = await load.burst(args.warmup, min(args.warmup, args.clients))
                    all_ids += [s.run_id for s in warm if s.run_id]
                sizes = args.scale if args.scale else [args.runs]
                for n in sizes:
                    await provider_stats(http, provider_url, reset=True)
                    cpu0 = procs.cpu()
                    t0 = time.perf_counter()
                    async with phase(f"graph burst of {n} on {count} worker(s)", args.timeout, services):
                        samples, starts_s = await load.burst(n, args.clients, args.in_flight)
                    wall = time.perf_counter() - t0
                    cpu1 = procs.cpu()
                    stats = await provider_stats(http, provider_url)
                    ok = [s for s in samples if s.status == "success"]
                    e2e = [(s.done or 0) - s.begun for s in ok]
                    entry = {
                        "workers": count,
                        "runs": n,
                        "wall_s": wall,
                        "runs_per_s": len(ok) / wall,
                        "starts_per_s": n / starts_s,
                        "peak_model_calls": stats["peak_in_flight"],
                        "p50_s": pct(e2e, 50),
                        "p99_s": pct(e2e, 99),
                        "failed": n - len(ok),
                        "errors": dict(
                            Counter(s.error or s.status for s in samples if s.status != "success")
                        ),
                        "cpu_s": {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1},
                        "peak_rss_mib": procs.peak_rss_mib(),
                    }
                    ok_ids = [s.run_id for s in ok if s.run_id]
                    entry["phases"] = await run_phases(database_url, ok_ids)
                    entry["queue"] = await queue_phases(temporal, database_url, ok_ids)
                    if args.scale:
                        entry["list_runs_p50_ms"] = await list_runs_p50(http, auth)
                        results["scale"].append(entry)
                    else:
                        results["graph"].append(entry)
                    all_ids += [s.run_id for s in samples if s.run_id]
                    print(f"{n} runs on {count} worker(s): {wall:.1f} s, {entry['runs_per_s']:.1f} runs/s")
                if count == args.workers[0] and not args.scale:
                    cpu0 = procs.cpu()
                    async with phase("bare burst", args.timeout, services):
                        bare_wall, bare_lat, bare_ids = await bare_burst(temporal, cfg, args.runs, args.delay)
                    cpu1 = procs.cpu()
                    results["bare"] = {
                        "runs": args.runs,
                        "wall_s": bare_wall,
                        "runs_per_s": args.runs / bare_wall,
                        "p50_s": pct(bare_lat, 50),
                        "p99_s": pct(bare_lat, 99),
                        "cpu_s": {k: cpu1[k] - cpu0.get(k, 0.0) for k in cpu1},
                        "peak_activities": await peak_activities(temporal, bare_ids),
                    }
                    print(f"bare: {bare_wall:.1f} s, {results['bare']['runs_per_s']:.1f} runs/s")
                for w in workers:
                    await w.stop()
                    services.remove(w)
                workers = []
            check = await ledger_check(database_url, all_ids)
            results["ledger_check"] = check
            problems = check_failures(len(all_ids), check)
    finally:
        for service in services:
            await service.stop()
        if provider.stdin is not None:
            provider.stdin.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(provider.wait(), timeout=10)
        await temporal_env.shutdown()
    results["problems"] = problems
    return results


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.latency_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--runs", "-n", type=int, default=600, help="runs per burst (default 600)")
    parser.add_argument(
        "--delay", type=float, default=1.0, help="provider seconds before the answer (default 1)"
    )
    parser.add_argument("--chunks", type=int, default=100, help="streamed chunks per answer (default 100)")
    parser.add_argument(
        "--clients", type=int, default=20, help="concurrent API clients starting runs (default 20)"
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1], help="worker process counts (default 1)"
    )
    parser.add_argument("--warmup", type=int, default=10, help="warm-up runs per worker count (default 10)")
    parser.add_argument("--graph", default="langgraph:poet")
    parser.add_argument(
        "--scale",
        type=int,
        nargs="*",
        default=[],
        help="cost-growth mode: bursts of these sizes (e.g. 1000 5000 10000)",
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=None,
        metavar="N",
        help="at most N runs open at once (started, not terminal); default: the whole burst at once",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a setting for the service processes"
    )
    parser.add_argument(
        "--temporal-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dynamic config value of the dev server (both runledger and bare run on it)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per phase (default 900)")
    parser.add_argument(
        "--profile-worker",
        action="store_true",
        help="cProfile each worker process (bench/results/<stamp>-worker<i>-<count>.pstats; slows it, so "
        "its figures are not comparable); summarize with bench.profiling",
    )
    args = parser.parse_args(argv)
    args.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    clean_environment()
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from pgserver.postgres_server import get_server

    pgdata = tempfile.mkdtemp(prefix="rl-lat-pg-")
    server = get_server(pgdata, cleanup_mode=None)
    postgres_pid = server.get_pid()
    load_before = procstat.load_average()
    try:
        database_url = create_database(server.get_uri())
        upgrade(database_url)
        results = asyncio.run(run(args, database_url, int(postgres_pid) if postgres_pid else None))
    finally:
        server.cleanup()
        if postgres_pid and not procstat.stop_process(int(postgres_pid), signal.SIGINT, 15):
            print(f"warning: Postgres (pid {postgres_pid}) did not stop")
        shutil.rmtree(pgdata, ignore_errors=True)
    results["machine"] = {
        "cpus": os.cpu_count(),
        "git": git_revision(),
        "load_average": {"before": load_before, "after": procstat.load_average()},
    }
    report(args, results)
    if args.profile_worker:
        for path in sorted(RESULTS_DIR.glob(f"{args.stamp}-worker*.pstats")):
            print_profile(path)
    out = RESULTS_DIR / f"latency-{args.stamp}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nJSON: {out}")
    return 1 if results["problems"] else 0


if __name__ == "__main__":
    try:
        code = main()
    finally:
        time.sleep(0.5)  # Temporal's core runtime can abort the interpreter at exit (feasibility §9.1).
    sys.exit(code)
