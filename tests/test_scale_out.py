"""Scale-out, as in production: two ``runledger worker`` and two ``runledger api`` processes on one
Postgres and one Temporal. 200 runs go through both APIs, one worker is ``kill -9``ed midway, and
afterwards every run is terminal and billed exactly once, the ledger balances, and either API serves
any run's event stream."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from db.session import Database
from runledger.config import Settings
from tests.db.queries import rows, scalar
from tests.fakes.loopback import free_port
from tests.helpers import ADMIN, ADMIN_TOKEN, TERMINAL, Tenant, eventually, parse_sse

RUNS = 200


@asynccontextmanager
async def _process(
    args: list[str], env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "runledger.cli", *args, env=env, stdout=sink, stderr=sink
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _ready(url: str) -> None:
    async def probe() -> int:
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                return (await http.get(f"{url}/readyz")).status_code
        except httpx.HTTPError:
            return 0

    await eventually(probe, until=lambda code: code == 200, within=300, interval=0.5)


@pytest.mark.timeout(600)
async def test_two_workers_two_apis_survive_kill_9_of_a_worker(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": str(settings.database_url),
        "TEMPORAL_ADDRESS": str(settings.temporal_address),
        # Settings that must match across processes: one task queue, one admin token, one model.
        "TEMPORAL_TASK_QUEUE": f"scale-{uuid.uuid4()}",
        "RUNLEDGER_ADMIN_TOKEN": ADMIN_TOKEN,
        "RUNLEDGER_DEFAULT_MODEL": settings.default_model,
        "RUNLEDGER_MODEL_API_BASE": str(settings.model_api_base),
        "RUNLEDGER_MODEL_API_KEY": "sk-fake",
        "RUNLEDGER_WORKER_METRICS_PORT": "0",
    }
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    async with (
        _process(["worker"], env, tmp_path / "worker-1.log") as worker_1,
        _process(["worker"], env, tmp_path / "worker-2.log"),
        _process(["api"], {**env, "RUNLEDGER_API_PORT": str(ports[0])}, tmp_path / "api-1.log"),
        _process(["api"], {**env, "RUNLEDGER_API_PORT": str(ports[1])}, tmp_path / "api-2.log"),
    ):
        await asyncio.gather(*(_ready(url) for url in urls))
        apis = [httpx.AsyncClient(base_url=url, timeout=60) for url in urls]
        try:
            made = (await apis[0].post("/api/v1/admin/users", json={"name": "scale"}, headers=ADMIN)).json()
            user = Tenant(made["user_id"], made["billing_account_id"], made["api_key"])
            top = await apis[1].post(
                f"/api/v1/admin/billing-accounts/{user.billing_account_id}/credits",
                json={"amount_credits": 50_000_000, "reference": "scale-out"},
                headers=ADMIN,
            )
            assert top.status_code == 201, top.text
            run_ids: list[str] = []
            pool = asyncio.Semaphore(16)

            async def start(i: int) -> None:
                async with pool:
                    resp = await apis[i % 2].post(
                        "/api/v1/graphs/langgraph:poet/runs",
                        json={"input": {"topic": f"wave {i}"}},
                        headers={**user.headers, "Idempotency-Key": f"scale-{i}"},
                    )
                    assert resp.status_code == 202, resp.text
                    run_ids.append(resp.json()["run_id"])

            await asyncio.gather(*(start(i) for i in range(RUNS // 2)))
            worker_1.send_signal(signal.SIGKILL)  # midway: runs of this worker are in flight
            await worker_1.wait()
            await asyncio.gather(*(start(i) for i in range(RUNS // 2, RUNS)))

            async def unfinished() -> int:
                found = await rows(
                    database,
                    "SELECT status FROM graph_runs WHERE billing_account_id = :a",
                    a=user.billing_account_id,
                )
                return sum(r["status"] not in TERMINAL for r in found) + RUNS - len(found)

            # Runs the killed worker held are retried on the other once their heartbeat times out.
            await eventually(unfinished, until=lambda n: n == 0, within=300, interval=1)

            statuses = await rows(
                database,
                "SELECT status, error_code, min(error_message) AS message, count(*) AS n FROM graph_runs "
                "WHERE billing_account_id = :a GROUP BY 1, 2",
                a=user.billing_account_id,
            )
            assert [(r["status"], r["n"]) for r in statuses] == [("success", RUNS)], statuses
            assert await scalar(
                database,
                "SELECT count(*) FROM charge_receipts WHERE billing_account_id = :a",
                a=user.billing_account_id,
            ) == await scalar(
                database,
                "SELECT count(*) FROM model_calls c JOIN graph_runs r USING (run_id) "
                "WHERE r.billing_account_id = :a AND c.status = 'settled'",
                a=user.billing_account_id,
            )
            # Exactly one paid call per run, however many attempts it took.
            per_run: list[dict[str, Any]] = await rows(
                database,
                "SELECT r.run_id, count(c.id) AS n FROM graph_runs r LEFT JOIN charge_receipts c USING (run_id) "
                "WHERE r.billing_account_id = :a GROUP BY r.run_id",
                a=user.billing_account_id,
            )
            assert {row["n"] for row in per_run} == {1}
            assert await scalar(
                database,
                "SELECT balance_credits FROM billing_accounts WHERE id = :a",
                a=user.billing_account_id,
            ) == await scalar(
                database,
                "SELECT sum(amount) FROM credit_ledger WHERE billing_account_id = :a",
                a=user.billing_account_id,
            )
            # Either API serves any run's stream, whichever API started it and whichever worker ran it.
            for run_id in run_ids[:3] + run_ids[-3:]:
                streams = []
                for http in apis:
                    async with http.stream(
                        "GET", f"/api/v1/runs/{run_id}/events", headers=user.headers
                    ) as resp:
                        assert resp.status_code == 200
                        streams.append(parse_sse([line async for line in resp.aiter_lines()]))
                assert streams[0] == streams[1]
                assert streams[0][-1].event == "done"
        finally:
            for http in apis:
                await http.aclose()
