"""The load generator's side of a run_bench run: starting runs and measuring bursts.

Contract: :class:`Ctx` starts graph runs through the API (tenants in turn) and bare workflows through
the Temporal client; a refused or timed-out start is recorded on its :class:`RunSample`, never
raised. :func:`burst` runs N of them concurrently and reports wall time, runs/s, latencies and CPU
per process; :func:`postgres_check` reads the runs' rows back (read-only).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
from temporalio.client import Client

from bench.bare import BareWorkflow
from bench.common import StackConfig
from bench.history import RunSample
from bench.services import Processes
from bench.stats import summary_ms
from runledger.contracts.runs import TERMINAL_STATUSES

PAYLOAD: dict[str, Any] = {"input": {"topic": "the sea"}}
RESULT_WAITERS = 400


@dataclass
class Ctx:
    http: httpx.AsyncClient
    temporal: Client
    cfg: StackConfig
    graph_id: str
    tenants: list[dict[str, str]] = field(default_factory=list)  # each tenant's auth header
    #: Result waits at once: each is a long poll on Temporal, and a burst of thousands exceeds the
    #: dev server's concurrent-poller limit (its retries would load the server being measured).
    #: Runs end roughly in start order, so a waiter queued here sees its run end late only when
    #: hundreds of earlier ones are still running.
    waiters: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(RESULT_WAITERS))
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
        async with self.waiters:
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
