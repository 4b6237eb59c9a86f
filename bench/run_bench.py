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
import json
import platform
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import temporalio
from temporalio.testing import WorkflowEnvironment

from bench import procstat, profiling
from bench.common import StackConfig
from bench.history import RunSample, breakdown, event_counts, fetch_histories
from bench.load import Ctx, burst, postgres_check, sequential
from bench.run_report import report
from bench.services import (
    PYCACHE_PREFIX,
    REPO_ROOT,
    RESULTS_DIR,
    TEMPORAL_PERSISTENCE,
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
from bench.stats import summary_ms
from db.migrate import upgrade
from runledger.binaries import temporal_cli
from runledger.contracts.temporal import SEARCH_ATTRIBUTES


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
            env=dict(kv.split("=", 1) for kv in args.env),
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
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a setting for the service processes"
    )
    args = parser.parse_args(argv)
    for name in ("requests", "runs", "rounds", "single", "warmup", "tenants"):
        if getattr(args, name) < (0 if name == "warmup" else 1):
            parser.error(f"--{name} is too small")
    args.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.profile_path = RESULTS_DIR / f"{args.stamp}-worker.pstats"
    return args


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
