"""Starts hold no lock across Temporal, a lost start is completed, and a run whose workflow ended
without finalizing it is finalized with its hold released (HOLDS_ALWAYS_RELEASED)."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client, ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment

from activities.sweep import sweep_runs
from db.session import Database
from runledger.binaries import temporal_cli
from runledger.config import Settings
from runledger.contracts.reconcile import SweepInput
from runledger.telemetry import RunTracer
from tests.conftest import api_client
from tests.db.queries import rows, scalar
from tests.fakes.openai_server import FakeProvider
from tests.helpers import Tenant, eventually, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
async def dead_temporal_api(settings: Settings, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The API whose Temporal was reachable at start-up and then went away."""
    doomed = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli(), ui=False)
    dead = doomed.client
    await doomed.shutdown()
    async with api_client(settings, database, dead) as api:
        yield api


async def _sweep(database: Database, client: Client, settings: Settings) -> Any:
    return await sweep_runs(database, client, settings, RunTracer(), SweepInput(older_than_seconds=0))


async def _hold_of(database: Database, run_id: str) -> list[dict[str, Any]]:
    return await rows(
        database,
        "SELECT status, reserved_credits FROM credit_reservations WHERE run_id = CAST(:r AS uuid)",
        r=run_id,
    )


async def test_keyless_start_that_temporal_refuses_leaves_nothing(
    dead_temporal_api: httpx.AsyncClient, database: Database, user: Tenant
) -> None:
    resp = await start_run(dead_temporal_api, user)
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "temporal_unavailable"
    assert (
        await scalar(database, "SELECT count(*) FROM graph_runs WHERE requested_by = :u", u=user.user_id) == 0
    )
    assert (
        await scalar(
            database,
            "SELECT count(*) FROM credit_reservations WHERE billing_account_id = :a",
            a=user.billing_account_id,
        )
        == 0
    )


async def test_keyed_start_lost_to_a_down_temporal_is_completed_by_the_clients_retry(
    dead_temporal_api: httpx.AsyncClient, api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    refused = await start_run(dead_temporal_api, user, key="lost-start")
    assert refused.status_code == 503
    assert "retry with the same key" in refused.json()["error"]["message"]
    (recorded,) = await rows(
        database, "SELECT run_id, status FROM graph_runs WHERE requested_by = :u", u=user.user_id
    )
    assert recorded["status"] == "pending"  # committed with its hold before the start was tried
    assert [h["status"] for h in await _hold_of(database, str(recorded["run_id"]))] == ["open"]
    retried = await start_run(api, user, key="lost-start")  # Temporal is back (the live API)
    assert retried.status_code == 200
    assert retried.json()["run_id"] == str(recorded["run_id"])
    run = await wait_for_run(api, user, retried.json()["run_id"])
    assert run["status"] == "success"
    assert run["model_calls"] == 1


async def test_sweeper_starts_a_lost_keyed_start(
    dead_temporal_api: httpx.AsyncClient,
    api: httpx.AsyncClient,
    user: Tenant,
    database: Database,
    client: Client,
    settings: Settings,
) -> None:
    refused = await start_run(dead_temporal_api, user, key="never-retried")
    assert refused.status_code == 503
    run_id = str(
        await scalar(database, "SELECT run_id FROM graph_runs WHERE requested_by = :u", u=user.user_id)
    )
    swept = await _sweep(database, client, settings)
    assert swept.started >= 1
    run = await wait_for_run(api, user, run_id)
    assert run["status"] == "success"
    # A second pass finds nothing more to do for it.
    assert (await _sweep(database, client, settings)).started == 0


async def test_HOLDS_ALWAYS_RELEASED_terminated_workflow_is_finalized_and_its_hold_released(
    api: httpx.AsyncClient,
    user: Tenant,
    database: Database,
    client: Client,
    settings: Settings,
    fake_provider: FakeProvider,
) -> None:
    gate = threading.Event()
    fake_provider.log.gate = gate
    try:
        run_id = (await start_run(api, user)).json()["run_id"]

        async def waiting() -> int:
            return fake_provider.log.waiting

        await eventually(waiting, until=lambda n: n >= 1, within=60)  # the call is at the provider
        address = client.service_client.config.target_host
        await asyncio.to_thread(
            subprocess.run,
            [
                temporal_cli(),
                "workflow",
                "terminate",
                "--address",
                address,
                "--workflow-id",
                f"graph-run:{run_id}",
                "--reason",
                "operator",
            ],
            check=True,
            capture_output=True,
        )
        assert (await api.get(f"/api/v1/runs/{run_id}", headers=user.headers)).json()["status"] == "running"
        assert [h["status"] for h in await _hold_of(database, run_id)] == ["open"]
        swept = await _sweep(database, client, settings)
        assert swept.finalized >= 1
    finally:
        fake_provider.log.gate = None
        gate.set()
    run = await wait_for_run(api, user, run_id)
    assert run["status"] == "error"
    assert run["error_code"] == "workflow_terminated"
    assert [h["status"] for h in await _hold_of(database, run_id)] != ["open"]
    me = (await api.get("/api/v1/me", headers=user.headers)).json()
    assert me["reserved_credits"] == 0
    assert me["available_credits"] == me["balance_credits"]
    # Whatever became of the call that was in flight, the balance is what the ledger says.
    ledger_sum = await scalar(
        database,
        "SELECT sum(amount) FROM credit_ledger WHERE billing_account_id = :a",
        a=user.billing_account_id,
    )
    assert me["balance_credits"] == ledger_sum


async def test_HOLDS_ALWAYS_RELEASED_overlapping_schedule_slot_cancels_the_old_run(
    api: httpx.AsyncClient, user: Tenant, database: Database, client: Client, fake_provider: FakeProvider
) -> None:
    created = await api.post(
        "/api/v1/schedules",
        json={
            "graph_id": "langgraph:poet",
            "input": {"topic": "tides"},
            "cron": "0 9 1 1 *",
            "timezone": "UTC",
            "overlap": "terminate_other",
        },
        headers=user.headers,
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["schedule_id"]
    gate = threading.Event()
    fake_provider.log.gate = gate

    async def schedule_runs() -> list[dict[str, Any]]:
        resp = await api.get("/api/v1/runs", params={"schedule_id": schedule_id}, headers=user.headers)
        found: list[dict[str, Any]] = resp.json()["runs"]
        return found

    # Both slots are triggered as Temporal fires them, under the schedule's overlap policy (the API's
    # trigger-now allows overlap, and Temporal does not track runs started that way).
    schedule = client.get_schedule_handle(f"schedule:{schedule_id}")
    try:
        await schedule.trigger(overlap=ScheduleOverlapPolicy.TERMINATE_OTHER)
        (first,) = await eventually(
            schedule_runs, until=lambda runs: len(runs) == 1 and runs[0]["status"] == "running", within=60
        )

        async def waiting() -> int:
            return fake_provider.log.waiting

        await eventually(waiting, until=lambda n: n >= 1, within=60)
        # A slot's run id is derived from its second (SPEC §2): a second trigger within the same
        # second is the same slot, so the next one waits for the next second.
        slot = datetime.fromisoformat(first["scheduled_for"])
        await asyncio.sleep(max(0.0, (slot + timedelta(seconds=1.1) - datetime.now(UTC)).total_seconds()))
        # The next slot terminates the running one (terminate_other): its run is asked to cancel.
        await schedule.trigger(overlap=ScheduleOverlapPolicy.TERMINATE_OTHER)
        old = await wait_for_run(api, user, first["run_id"], within=60)
    finally:
        fake_provider.log.gate = None
        gate.set()
    assert old["status"] == "cancelled"
    assert [h["status"] for h in await _hold_of(database, first["run_id"])] != ["open"]
    runs = await eventually(
        schedule_runs, until=lambda rs: len(rs) == 2 and all(r["completed_at"] for r in rs), within=60
    )
    assert {r["status"] for r in runs if r["run_id"] != first["run_id"]} == {"success"}
