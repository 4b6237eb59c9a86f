"""Billing under pressure: duplicate deliveries, concurrent starts, exhausted credits, a killed
worker. Names carry IDEMPOTENT_CHARGES, ONE_LEDGER_WRITER and NO_SILENT_UNBILLED_CALLS."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from activities.reconcile import reconcile_once
from db import catalog, ledger, ledger_reads, model_calls
from db.migrate import upgrade
from db.session import Database
from runledger.config import Settings
from runledger.contracts import ids
from runledger.contracts.catalog import estimate_run_credits
from runledger.llm import LiteLLMGateway, model_price
from runledger.worker import WorkerDeps, build_worker, load_graphs, publish_catalog
from tests.conftest import api_client, create_database
from tests.db.builders import insert_run
from tests.db.queries import rows, scalar
from tests.db.test_ledger import _pending_call
from tests.fakes.openai_server import FakeProvider
from tests.helpers import ADMIN, Tenant, create_user, eventually, start_run, top_up, wait_for_run
from tests.projects.helpers import write_project


def _queue(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"temporal_task_queue": f"test-{uuid.uuid4()}", **changes})


async def _balance_matches_ledger(database: Database, account: str) -> None:
    async with database.transaction() as session:
        assert await ledger.get_balance(session, billing_account_id=account) == await ledger_reads.ledger_sum(
            session, billing_account_id=account
        )


async def test_IDEMPOTENT_CHARGES_50_concurrent_writers_with_10x_duplicates(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=10_000_000)
    run_id = await insert_run(database, user.billing_account_id, user.user_id)
    charges = [
        ledger.Charge(
            billing_account_id=user.billing_account_id,
            run_id=run_id,
            attempt=1,
            usage_unit_id=f"call-{i}",
            source_system="litellm",
            source_reference=ids.charge_source_reference(run_id=run_id, attempt=1, usage_unit_id=f"call-{i}"),
            graph_id="langgraph:poet",
            model="gpt-4o-mini",
            provider="openai",
            tokens_in=10,
            tokens_out=20,
            cost_usd=Decimal("0.0000135"),
            markup=Decimal(2),
            charged_credits=100 + i,
        )
        for i in range(50)
    ]

    async def deliver(charge: ledger.Charge) -> bool:
        async with database.transaction() as session:
            return (await ledger.record_charge(session, charge=charge)).created

    deliveries = [charge for charge in charges for _ in range(10)]
    created = await asyncio.gather(*(deliver(c) for c in deliveries))
    assert sum(created) == 50
    expected = sum(c.charged_credits for c in charges)
    assert await scalar(database, "SELECT count(*) FROM charge_receipts WHERE run_id = :r", r=run_id) == 50
    assert await scalar(database, "SELECT count(*) FROM credit_ledger WHERE run_id = :r", r=run_id) == 50
    me = (await api.get("/api/v1/me", headers=user.headers)).json()
    assert me["balance_credits"] == 10_000_000 - expected
    await _balance_matches_ledger(database, user.billing_account_id)


@pytest.mark.usefixtures("worker")
async def test_concurrent_starts_cannot_overspend(
    api: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    async with database.transaction() as session:
        poet = await catalog.current_graph(session, "langgraph:poet")
    assert poet is not None
    per_run = estimate_run_credits(
        poet, {"topic": "the sea"}, model_price(settings.default_model), settings.markup
    )
    user = await create_user(api, credits=3 * per_run)
    responses = await asyncio.gather(*(start_run(api, user, key=f"race-{i}") for i in range(12)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [202] * 3 + [402] * 9
    assert all(r.json()["error"]["code"] == "insufficient_credits" for r in responses if r.status_code == 402)
    started = [r.json()["run_id"] for r in responses if r.status_code == 202]
    held = (await api.get("/api/v1/me", headers=user.headers)).json()
    assert held["available_credits"] <= held["balance_credits"] - 3 * per_run + per_run  # holds are visible
    finished = [await wait_for_run(api, user, run_id) for run_id in started]
    assert all(run["status"] == "success" for run in finished)
    for run in finished:
        detail = (await api.get(f"/api/v1/runs/{run['run_id']}", headers=user.headers)).json()
        assert detail["reservation"]["status"] == "released"
        assert detail["reservation"]["settled_credits"] == detail["cost_credits"]
    me = (await api.get("/api/v1/me", headers=user.headers)).json()
    one_call = max(run["cost_credits"] for run in finished)
    assert me["balance_credits"] >= -one_call
    assert me["reserved_credits"] == 0
    await _balance_matches_ledger(database, user.billing_account_id)


#: Declares one model call and makes three; the second asks for far more output than the first, so
#: an account that covers the start (one call at the preflight's maximum) runs dry at the second.
DRY_GRAPH = """
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    from runledger.sdk import ChatModel


    class State(TypedDict, total=False):
        topic: str
        notes: list[str]


    async def think(state: State) -> State:
        notes: list[str] = []
        for max_tokens in (100, 16000, 100):
            answer = await ChatModel(max_tokens=max_tokens).ainvoke([("user", f"Topic: {state['topic']} ({len(notes)})")])
            notes.append(answer.text)
        return {"notes": notes}


    builder = StateGraph(State)
    builder.add_node("think", think)
    builder.add_edge(START, "think")
    builder.add_edge("think", END)
    graph = builder.compile()
"""


@asynccontextmanager
async def _run_that_runs_dry(
    settings: Settings,
    pg_server_url: str,
    client: Client,
    gateway: LiteLLMGateway,
    tmp_path: Path,
    *,
    wait_seconds: int,
) -> AsyncIterator[tuple[httpx.AsyncClient, Database, Tenant, str]]:
    """A run of the dry graph on a database and worker of its own, on exactly its preflight."""
    url = create_database(pg_server_url)
    await asyncio.to_thread(upgrade, url)
    module = f"dry_{uuid.uuid4().hex[:8]}"  # the process keeps what it imported: one name per test
    project = write_project(
        tmp_path / "dry",
        {f"{module}.py": DRY_GRAPH},
        {"graphs": {"dry": f"./{module}.py:graph"}, "runledger": {"graphs": {"dry": {"max_model_calls": 1}}}},
    )
    own = _queue(settings, database_url=url, graphs_config=project, credit_wait_seconds=wait_seconds)
    database = Database(url, pool_size=5)
    try:
        registry = load_graphs(own)
        await publish_catalog(database, registry, own.default_model)
        spec = registry.get("langgraph:dry")
        assert spec is not None
        payload = {"topic": "the sea"}
        preflight = estimate_run_credits(spec.spec, payload, model_price(own.default_model), own.markup)
        async with (
            build_worker(client, own, WorkerDeps(database=database, gateway=gateway, registry=registry)),
            api_client(own, database, client) as api,
        ):
            user = await create_user(api, credits=preflight)
            started = await start_run(api, user, graph_id="langgraph:dry", payload={"input": payload})
            assert started.status_code == 202, started.text
            yield api, database, user, started.json()["run_id"]
    finally:
        await database.dispose()


async def test_exhausted_credits_pause_then_top_up_resumes(
    settings: Settings, pg_server_url: str, client: Client, gateway: LiteLLMGateway, tmp_path: Path
) -> None:
    async with _run_that_runs_dry(settings, pg_server_url, client, gateway, tmp_path, wait_seconds=120) as (
        api,
        database,
        user,
        run_id,
    ):

        async def detail() -> dict[str, Any]:
            body: dict[str, Any] = (await api.get(f"/api/v1/runs/{run_id}", headers=user.headers)).json()
            return body

        paused = await eventually(detail, until=lambda run: run["status"] == "paused", within=30)
        assert paused["pause_reason"] == "insufficient_credits"
        calls_before = paused["model_calls"]
        await top_up(api, user.billing_account_id, 10_000_000)
        run = await wait_for_run(api, user, run_id, within=30)
        assert run["status"] == "success", run
        receipts = await rows(
            database, "SELECT usage_unit_id FROM charge_receipts WHERE run_id = :r", r=run_id
        )
        assert len(receipts) == 3 == len({r["usage_unit_id"] for r in receipts})
        assert calls_before < 3
        await _balance_matches_ledger(database, user.billing_account_id)


async def test_paused_run_times_out_with_insufficient_credits(
    settings: Settings, pg_server_url: str, client: Client, gateway: LiteLLMGateway, tmp_path: Path
) -> None:
    async with _run_that_runs_dry(settings, pg_server_url, client, gateway, tmp_path, wait_seconds=2) as (
        api,
        _,
        user,
        run_id,
    ):
        run = await wait_for_run(api, user, run_id, within=30)
    assert run["status"] == "error"
    assert run["error_code"] == "insufficient_credits"
    assert run["cost_credits"] > 0  # what it did spend stays visible
    assert run["reservation"] is None or run["reservation"]["status"] == "released"


async def test_NO_SILENT_UNBILLED_CALLS_kill_9_worker_mid_run(
    settings: Settings, database: Database, client: Client, fake_provider: FakeProvider, tmp_path: Any
) -> None:
    """The worker process is SIGKILLed while a model call is at the provider; a new worker process
    finishes the run. Every delivered call has exactly one receipt, and the call that died with the
    worker is flagged by reconciliation instead of staying silently pending."""
    queue = _queue(settings)
    env = {
        **os.environ,
        "DATABASE_URL": str(settings.database_url),
        "TEMPORAL_ADDRESS": str(settings.temporal_address),
        "TEMPORAL_TASK_QUEUE": queue.temporal_task_queue,
        "RUNLEDGER_DEFAULT_MODEL": settings.default_model,
        "RUNLEDGER_MODEL_API_BASE": str(settings.model_api_base),
        "RUNLEDGER_MODEL_API_KEY": "sk-fake",
    }

    async def spawn_worker(name: str) -> asyncio.subprocess.Process:
        # A local temp file: opening it does not block the loop in any way that matters here.
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115, ASYNC230
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "runledger.cli", "worker", env=env, stdout=log, stderr=log
        )

    log = fake_provider.log
    delivered_before = set(log.ids())
    aborted_before = len(log.aborted)
    first_gate, second_gate = threading.Event(), threading.Event()
    log.gate = first_gate
    worker = await spawn_worker("worker-1")
    try:
        async with api_client(queue, database, client) as api:
            user = await create_user(api, credits=5_000_000)
            started = await start_run(api, user, graph_id="langgraph:brief")
            run_id = started.json()["run_id"]

            async def waiting() -> int:
                return log.waiting

            await eventually(waiting, until=lambda n: n == 1, within=90)  # call 1 is at the provider
            log.gate = second_gate  # the calls after the first will be held
            first_gate.set()

            async def call_two_held() -> tuple[int, int]:
                return len(set(log.ids()) - delivered_before), log.waiting

            # Call 1 was delivered and call 2 is at the provider, held.
            await eventually(call_two_held, until=lambda state: state == (1, 1), within=30)
            worker.kill()
            await worker.wait()
            second_gate.set()  # the provider finishes call 2 for a client that is gone
            await eventually(
                lambda: asyncio.sleep(0, len(log.aborted)), until=lambda n: n == aborted_before + 1
            )
            log.gate = None
            worker = await spawn_worker("worker-2")
            # Temporal retries the graph once the dead worker's heartbeat times out.
            run = await wait_for_run(api, user, run_id, within=120)
    finally:
        log.gate = None
        first_gate.set()
        second_gate.set()
        if worker.returncode is None:
            worker.terminate()
            await worker.wait()
    assert run["status"] == "success", run
    delivered = set(log.ids()) - delivered_before
    receipts = await rows(
        database, "SELECT provider_response_id, attempt FROM charge_receipts WHERE run_id = :r", r=run_id
    )
    assert {r["provider_response_id"] for r in receipts} == delivered  # every delivered call billed once
    assert len(receipts) == len(delivered) == 3
    calls = await rows(
        database, "SELECT call_key, attempt, status FROM model_calls WHERE run_id = :r", r=run_id
    )
    # The new attempt found the lost attempt's call still pending: left unsettled, usage unknown.
    assert sorted(c["status"] for c in calls) == ["settled", "settled", "settled", "unsettled"]

    report = await reconcile_once(database, threshold_seconds=0)
    assert report.flagged_calls >= 1
    calls = await rows(database, "SELECT call_key, status FROM model_calls WHERE run_id = :r", r=run_id)
    assert sorted(c["status"] for c in calls) == ["flagged", "settled", "settled", "settled"]
    assert [c["call_key"] for c in calls if c["status"] == "flagged"] == ["draft:2.0"]
    assert (
        await scalar(
            database, "SELECT count(*) FROM model_calls WHERE status = 'pending' AND run_id = :r", r=run_id
        )
        == 0
    )
    await _balance_matches_ledger(database, user.billing_account_id)


async def test_reconciliation_reports_drift_and_is_visible_to_admins(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=1_000)
    async with database.transaction() as session:  # corrupt the cache behind the ledger writer's back
        from sqlalchemy import text

        await session.execute(
            text("UPDATE billing_accounts SET balance_credits = balance_credits + 7 WHERE id = :a"),
            {"a": user.billing_account_id},
        )
    try:
        result = await reconcile_once(database, threshold_seconds=3600)
        report = await api.get("/api/v1/billing/reconciliation", headers=ADMIN)
        assert report.status_code == 200
        body = report.json()
        assert body["report_id"] == result.report_id
        drift = {d["billing_account_id"]: d for d in body["details"]["drift"]}
        assert drift[user.billing_account_id]["drift"] == 7
        assert (await api.get("/api/v1/billing/reconciliation", headers=user.headers)).status_code == 403
    finally:
        async with database.transaction() as session:
            from sqlalchemy import text

            await session.execute(
                text("UPDATE billing_accounts SET balance_credits = balance_credits - 7 WHERE id = :a"),
                {"a": user.billing_account_id},
            )
    await _balance_matches_ledger(database, user.billing_account_id)


async def test_ledger_sum_equals_cached_balance_for_every_account(database: Database) -> None:
    """Runs last in this module: after everything above, no account drifts."""
    report = await reconcile_once(database, threshold_seconds=3600)
    assert report.accounts_checked > 0
    assert report.accounts_with_drift == 0


async def test_runledger_reconcile_command(
    api: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    """The command settles what it can and lists what it flags, with the reason."""
    user = await create_user(api, credits=1_000)
    run_id = await insert_run(database, user.billing_account_id, user.user_id)
    call_id = await _pending_call(
        database, run_id, "poem:0", usage_unit_id=ids.usage_unit_id(run_id=run_id, call_key="poem:0")
    )
    async with database.transaction() as session:
        await model_calls.mark_unsettled(
            session, call_id=call_id, reason="the stream broke before any output"
        )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runledger.cli",
        "reconcile",
        "--after-seconds",
        "3600",
        env={**os.environ, "DATABASE_URL": str(settings.database_url)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "model call(s) flagged (reasons in the report)" in out.decode()
    assert f"flagged run {run_id} call poem:0 (attempt 1): the stream broke before any output" in out.decode()


@pytest.mark.usefixtures("worker")
async def test_reconciliation_prunes_events_of_old_runs(api: httpx.AsyncClient, database: Database) -> None:
    user = await create_user(api, credits=1_000_000)
    run = await wait_for_run(api, user, (await start_run(api, user)).json()["run_id"])
    assert await scalar(database, "SELECT count(*) FROM run_events WHERE run_id = :r", r=run["run_id"]) > 0
    async with database.transaction() as session:  # let 31 days pass for this run
        from sqlalchemy import text

        await session.execute(
            text("UPDATE graph_runs SET completed_at = completed_at - interval '31 days' WHERE run_id = :r"),
            {"r": run["run_id"]},
        )
    result = await reconcile_once(database, threshold_seconds=3600, event_retention_days=30)
    assert result.pruned_events > 0
    assert await scalar(database, "SELECT count(*) FROM run_events WHERE run_id = :r", r=run["run_id"]) == 0
    # The run, its receipts and the ledger stay.
    assert (await api.get(f"/api/v1/runs/{run['run_id']}", headers=user.headers)).json()[
        "status"
    ] == "success"
    assert (
        await scalar(database, "SELECT count(*) FROM charge_receipts WHERE run_id = :r", r=run["run_id"]) == 1
    )
