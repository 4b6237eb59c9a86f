"""Grants and schedules through the API on a real Temporal dev server (the time-skipping server has
no Schedules). Names carry SCHEDULED_TIME_FROM_TEMPORAL, ONE_RUN_PER_SLOT, GRANT_VALIDATED_TWICE,
GRANT_SCOPES_CONSTRAIN_GRAPHS and BILLING_VIA_GRANT."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    ScheduleRange,
    WorkflowFailureError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from db.session import Database
from runledger.binaries import temporal_cli
from runledger.config import Settings
from runledger.contracts import ids
from runledger.contracts.runs import GraphRunResult
from runledger.contracts.schedules import SCHEDULED_RUN_WORKFLOW, SCHEDULED_START_TIME, ScheduledRunInput
from tests.conftest import api_client
from tests.db.queries import scalar
from tests.fakes.openai_server import FakeProvider
from tests.helpers import Tenant, create_user, eventually, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")

POET = {
    "graph_id": "langgraph:poet",
    "input": {"topic": "tides"},
    "cron": "0 9 * * *",
    "timezone": "Europe/Paris",
}


async def create_schedule(api: httpx.AsyncClient, user: Tenant, **overrides: Any) -> dict[str, Any]:
    resp = await api.post("/api/v1/schedules", json={**POET, **overrides}, headers=user.headers)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def create_grant(api: httpx.AsyncClient, user: Tenant, **body: Any) -> dict[str, Any]:
    resp = await api.post(
        "/api/v1/grants", json={"scopes": ["graph:execute:langgraph:poet"], **body}, headers=user.headers
    )
    assert resp.status_code == 201, resp.text
    grant: dict[str, Any] = resp.json()
    return grant


async def schedule_runs(api: httpx.AsyncClient, user: Tenant, schedule_id: str) -> list[dict[str, Any]]:
    resp = await api.get("/api/v1/runs", params={"schedule_id": schedule_id}, headers=user.headers)
    runs: list[dict[str, Any]] = resp.json()["runs"]
    return runs


async def trigger_and_wait(api: httpx.AsyncClient, user: Tenant, schedule_id: str) -> dict[str, Any]:
    resp = await api.post(f"/api/v1/schedules/{schedule_id}/trigger", headers=user.headers)
    assert resp.status_code == 202, resp.text

    async def finished() -> list[dict[str, Any]]:
        return [r for r in await schedule_runs(api, user, schedule_id) if r["completed_at"]]

    (run,) = await eventually(finished, until=lambda runs: len(runs) == 1, within=60)
    return run


async def test_invalid_cron_timezone_and_overlap_are_422_and_create_nothing(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    for override, code in (
        ({"cron": "61 * * * *"}, "invalid_cron"),
        ({"cron": "* * *"}, "invalid_cron"),
        ({"cron": "@hourly"}, "invalid_cron"),
        ({"timezone": "Mars/Olympus"}, "invalid_timezone"),
        ({"timezone": "../../etc/passwd"}, "invalid_timezone"),
        ({"overlap": "sometimes"}, "validation_error"),
        ({"catchup_window_seconds": 1}, "validation_error"),
        ({"input": {"wrong": 1}}, "validation_error"),
        ({"graph_id": "langgraph:nope"}, "graph_not_found"),
    ):
        resp = await api.post("/api/v1/schedules", json={**POET, **override}, headers=user.headers)
        assert resp.status_code in (404, 422), override
        assert resp.json()["error"]["code"] == code, (override, resp.json())
    assert (
        await scalar(database, "SELECT count(*) FROM schedules WHERE owner_user_id = :u", u=user.user_id) == 0
    )
    assert (
        await scalar(database, "SELECT count(*) FROM execution_grants WHERE user_id = :u", u=user.user_id)
        == 0
    )


async def test_create_matches_temporal_describe(api: httpx.AsyncClient, user: Tenant, client: Client) -> None:
    created = await create_schedule(api, user, overlap="buffer_one", catchup_window_seconds=600)
    assert created["temporal_schedule_id"] == f"schedule:{created['schedule_id']}"
    assert created["next_run_at"] is not None
    description = await client.get_schedule_handle(created["temporal_schedule_id"]).describe()
    assert _cron_of(description) == ("0", "9", "0-6")
    assert description.schedule.spec.time_zone_name == "Europe/Paris"
    assert description.schedule.policy.overlap == ScheduleOverlapPolicy.BUFFER_ONE
    assert description.schedule.policy.catchup_window == timedelta(seconds=600)
    assert description.schedule.state.paused is False
    next_time = description.info.next_action_times[0]
    assert next_time.astimezone(UTC).hour in (7, 8)  # 09:00 in Paris is 07:00 or 08:00 UTC
    assert datetime.fromisoformat(created["next_run_at"]) == next_time

    detail = (await api.get(f"/api/v1/schedules/{created['schedule_id']}", headers=user.headers)).json()
    assert len(detail["next_run_times"]) == 5
    assert detail["paused"] is False
    grants = (await api.get("/api/v1/grants", headers=user.headers)).json()["grants"]
    assert [g["scopes"] for g in grants] == [["graph:execute:langgraph:poet"]]
    assert grants[0]["grant_id"] == created["grant_id"]
    listed = (await api.get("/api/v1/schedules", headers=user.headers)).json()["schedules"]
    assert [s["schedule_id"] for s in listed] == [created["schedule_id"]]


async def test_default_overlap_is_skip(api: httpx.AsyncClient, user: Tenant, client: Client) -> None:
    created = await create_schedule(api, user)
    assert created["overlap"] == "skip"
    description = await client.get_schedule_handle(created["temporal_schedule_id"]).describe()
    assert description.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP


async def test_patch_reaches_temporal_and_keeps_paused_state(
    api: httpx.AsyncClient, user: Tenant, client: Client
) -> None:
    created = await create_schedule(api, user, enabled=False)
    handle = client.get_schedule_handle(created["temporal_schedule_id"])
    before = await handle.describe()
    assert before.schedule.state.paused is True

    resp = await api.patch(
        f"/api/v1/schedules/{created['schedule_id']}",
        json={"cron": "30 18 * * 1-5", "timezone": "America/New_York", "input": {"topic": "new moon"}},
        headers=user.headers,
    )
    assert resp.status_code == 200, resp.text
    after = await handle.describe()
    assert _cron_of(after) == ("30", "18", "1-5")
    assert after.schedule.spec.time_zone_name == "America/New_York"
    action_input = await _action_input(client, created["temporal_schedule_id"])
    assert action_input.input == {"topic": "new moon"}
    assert after.schedule.state.paused is True  # a cron change does not resume a paused schedule
    assert after.schedule.state.note == before.schedule.state.note
    assert after.info.next_action_times[0] != before.info.next_action_times[0]
    assert after.info.next_action_times[0].astimezone(UTC).minute == 30

    resumed = await api.patch(
        f"/api/v1/schedules/{created['schedule_id']}", json={"enabled": True}, headers=user.headers
    )
    assert resumed.json()["enabled"] is True
    assert (await handle.describe()).schedule.state.paused is False
    paused = await api.patch(
        f"/api/v1/schedules/{created['schedule_id']}", json={"enabled": False}, headers=user.headers
    )
    assert paused.status_code == 200
    assert (await handle.describe()).schedule.state.paused is True
    overlap = await api.patch(
        f"/api/v1/schedules/{created['schedule_id']}", json={"overlap": "allow_all"}, headers=user.headers
    )
    assert overlap.status_code == 200
    assert (await handle.describe()).schedule.policy.overlap == ScheduleOverlapPolicy.ALLOW_ALL
    for bad in ({}, {"cron": "nope"}, {"timezone": "Nowhere/City"}, {"graph_id": "langgraph:brief"}):
        resp = await api.patch(f"/api/v1/schedules/{created['schedule_id']}", json=bad, headers=user.headers)
        assert resp.status_code == 422, bad
    assert _cron_of(await handle.describe()) == ("30", "18", "1-5")


def _ranges(ranges: Sequence[ScheduleRange]) -> str:
    if not ranges:
        return "*"
    (only,) = ranges
    return str(only.start) if only.end <= only.start else f"{only.start}-{only.end}"


def _cron_of(description: ScheduleDescription) -> tuple[str, str, str]:
    """(minute, hour, day-of-week) of the schedule as Temporal stores it: the server turns cron
    strings into structured calendars, so this is what it will actually fire on."""
    (calendar,) = description.schedule.spec.calendars
    return _ranges(calendar.minute), _ranges(calendar.hour), _ranges(calendar.day_of_week)


async def _action_input(client: Client, temporal_schedule_id: str) -> ScheduledRunInput:
    description = await client.get_schedule_handle(temporal_schedule_id).describe()
    action = description.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    (raw,) = action.args
    assert isinstance(raw, Payload)  # describe returns the action's arguments still encoded
    (decoded,) = await client.data_converter.decode([raw], [ScheduledRunInput])
    assert isinstance(decoded, ScheduledRunInput)
    return decoded


async def test_BILLING_VIA_GRANT_trigger_runs_as_system_scheduled(
    api: httpx.AsyncClient, user: Tenant, client: Client
) -> None:
    grant = await create_grant(api, user, max_credits=1_000_000)
    created = await create_schedule(api, user, grant_id=grant["grant_id"])
    balance_before = (await api.get("/api/v1/me", headers=user.headers)).json()["balance_credits"]
    run = await trigger_and_wait(api, user, created["schedule_id"])
    assert run["status"] == "success", run
    assert run["run_kind"] == "system_scheduled"
    assert run["trigger_source"] == "temporal_schedule"
    assert run["trigger_ref"] == created["schedule_id"]
    assert run["schedule_id"] == created["schedule_id"]
    assert run["requested_by"] == user.user_id
    assert run["billing_account_id"] == grant["billing_account_id"]
    assert run["input"] == {"topic": "tides"}
    charges = (await api.get(f"/api/v1/runs/{run['run_id']}/charges", headers=user.headers)).json()[
        "receipts"
    ]
    assert len(charges) == 1
    balance_after = (await api.get("/api/v1/me", headers=user.headers)).json()["balance_credits"]
    assert balance_before - balance_after == charges[0]["charged_credits"]
    grants = {
        g["grant_id"]: g for g in (await api.get("/api/v1/grants", headers=user.headers)).json()["grants"]
    }
    assert grants[grant["grant_id"]]["spent_credits"] == charges[0]["charged_credits"]
    # The slot's run id is derived from the slot time Temporal stamped on the workflow.
    assert run["run_id"] == ids.scheduled_run_id(
        schedule_id=created["schedule_id"], scheduled_for=datetime.fromisoformat(run["scheduled_for"])
    )
    found = [wf.id async for wf in client.list_workflows(f"ScheduleId = '{created['schedule_id']}'")]
    assert found  # the scheduled workflows are found in Temporal by ScheduleId


async def _deliver_slot(
    client: Client,
    settings: Settings,
    schedule_id: str,
    scheduled_for: datetime,
    graph_id: str = "langgraph:poet",
) -> GraphRunResult:
    """Deliver one slot as a schedule does: ScheduledRunWorkflow with TemporalScheduledStartTime set."""
    result: GraphRunResult = await client.execute_workflow(
        SCHEDULED_RUN_WORKFLOW,
        ScheduledRunInput(schedule_id=schedule_id, graph_id=graph_id, input={"topic": "tides"}),
        id=f"delivery-{uuid.uuid4()}",
        task_queue=settings.temporal_task_queue,
        search_attributes=TypedSearchAttributes([SearchAttributePair(SCHEDULED_START_TIME, scheduled_for)]),
        result_type=GraphRunResult,
    )
    return result


async def test_ONE_RUN_PER_SLOT_and_SCHEDULED_TIME_FROM_TEMPORAL(
    api: httpx.AsyncClient, user: Tenant, client: Client, settings: Settings, database: Database
) -> None:
    created = await create_schedule(api, user, enabled=False)
    slot = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    results = await asyncio.gather(
        *(_deliver_slot(client, settings, created["schedule_id"], slot) for _ in range(2))
    )
    run_id = ids.scheduled_run_id(schedule_id=created["schedule_id"], scheduled_for=slot)
    assert {r.run_id for r in results} == {run_id}
    assert sorted(r.status for r in results) == ["duplicate_slot", "success"]
    runs = await schedule_runs(api, user, created["schedule_id"])
    assert [r["run_id"] for r in runs] == [run_id]
    assert datetime.fromisoformat(runs[0]["scheduled_for"]) == slot  # from Temporal, not the wall clock
    assert await scalar(database, "SELECT count(*) FROM charge_receipts WHERE run_id = :r", r=run_id) == 1
    # A third delivery, after the first finished, still finds the same run.
    again = await _deliver_slot(client, settings, created["schedule_id"], slot)
    assert again.run_id == run_id
    assert await scalar(database, "SELECT count(*) FROM charge_receipts WHERE run_id = :r", r=run_id) == 1


async def test_SCHEDULED_TIME_FROM_TEMPORAL_refuses_runs_without_a_slot_time(
    api: httpx.AsyncClient, user: Tenant, client: Client, settings: Settings
) -> None:
    created = await create_schedule(api, user, enabled=False)
    with pytest.raises(WorkflowFailureError) as failure:
        await client.execute_workflow(
            SCHEDULED_RUN_WORKFLOW,
            ScheduledRunInput(schedule_id=created["schedule_id"], graph_id="langgraph:poet"),
            id=f"manual-{uuid.uuid4()}",
            task_queue=settings.temporal_task_queue,
        )
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "not_scheduled"
    assert await schedule_runs(api, user, created["schedule_id"]) == []


async def _skipped_slot(
    api: httpx.AsyncClient,
    user: Tenant,
    client: Client,
    settings: Settings,
    schedule_id: str,
    graph_id: str = "langgraph:poet",
) -> dict[str, Any]:
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    result = await _deliver_slot(client, settings, schedule_id, slot, graph_id=graph_id)
    run: dict[str, Any] = (await api.get(f"/api/v1/runs/{result.run_id}", headers=user.headers)).json()
    charges = (await api.get(f"/api/v1/runs/{result.run_id}/charges", headers=user.headers)).json()[
        "receipts"
    ]
    assert charges == []
    assert run["status"] == "skipped"
    return run


async def test_GRANT_VALIDATED_TWICE_revoked_expired_exhausted_out_of_scope_are_skipped(
    api: httpx.AsyncClient, user: Tenant, client: Client, settings: Settings, database: Database
) -> None:
    revoked = await create_grant(api, user)
    schedule = await create_schedule(api, user, grant_id=revoked["grant_id"], enabled=False)
    assert (
        await api.delete(f"/api/v1/grants/{revoked['grant_id']}", headers=user.headers)
    ).status_code == 204
    assert (await _skipped_slot(api, user, client, settings, schedule["schedule_id"]))[
        "error_code"
    ] == "grant_revoked"

    expiring = await create_grant(api, user, expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    schedule = await create_schedule(api, user, grant_id=expiring["grant_id"], enabled=False)
    async with database.transaction() as session:  # let an hour pass
        await session.execute(
            text("UPDATE execution_grants SET expires_at = now() - interval '1 second' WHERE id = :g"),
            {"g": expiring["grant_id"]},
        )
    assert (await _skipped_slot(api, user, client, settings, schedule["schedule_id"]))[
        "error_code"
    ] == "grant_expired"

    exhausted = await create_grant(api, user, max_credits=5_000)
    schedule = await create_schedule(api, user, grant_id=exhausted["grant_id"], enabled=False)
    async with database.transaction() as session:  # earlier runs spent the whole cap
        await session.execute(
            text("UPDATE execution_grants SET spent_credits = max_credits WHERE id = :g"),
            {"g": exhausted["grant_id"]},
        )
    run = await _skipped_slot(api, user, client, settings, schedule["schedule_id"])
    assert run["error_code"] == "grant_budget_exhausted"
    listed = await api.get("/api/v1/runs", params={"status": "skipped"}, headers=user.headers)
    assert run["run_id"] in [r["run_id"] for r in listed.json()["runs"]]  # visible in the run list

    scoped = await create_schedule(api, user, enabled=False)
    run = await _skipped_slot(api, user, client, settings, scoped["schedule_id"], graph_id="langgraph:brief")
    assert run["error_code"] == "grant_scope_mismatch"


async def test_GRANT_SCOPES_CONSTRAIN_GRAPHS_at_creation(api: httpx.AsyncClient, user: Tenant) -> None:
    brief_only = await create_grant(api, user, scopes=["graph:execute:langgraph:brief"])
    resp = await api.post(
        "/api/v1/schedules", json={**POET, "grant_id": brief_only["grant_id"]}, headers=user.headers
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "grant_scope_mismatch"
    wildcard = await create_grant(api, user, scopes=["graph:execute:*"])
    await create_schedule(api, user, grant_id=wildcard["grant_id"])


async def test_GRANT_VALIDATED_TWICE_revoke_mid_run_stops_before_the_next_model_call(
    api: httpx.AsyncClient, user: Tenant, client: Client, settings: Settings, fake_provider: FakeProvider
) -> None:
    grant = await create_grant(api, user, scopes=["graph:execute:*"])
    schedule = await create_schedule(
        api, user, grant_id=grant["grant_id"], graph_id="langgraph:brief", enabled=False
    )
    gate = threading.Event()
    fake_provider.log.gate = gate
    try:
        slot = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
        delivery = asyncio.create_task(
            _deliver_slot(client, settings, schedule["schedule_id"], slot, "langgraph:brief")
        )

        async def waiting() -> int:
            return fake_provider.log.waiting

        await eventually(waiting, until=lambda n: n == 1, within=30)  # the first call is at the provider
        assert (
            await api.delete(f"/api/v1/grants/{grant['grant_id']}", headers=user.headers)
        ).status_code == 204
        gate.set()
        result = await delivery
    finally:
        fake_provider.log.gate = None
        gate.set()
    run = await wait_for_run(api, user, result.run_id)
    assert run["status"] == "skipped"
    assert run["error_code"] == "grant_revoked"
    charges = (await api.get(f"/api/v1/runs/{run['run_id']}/charges", headers=user.headers)).json()[
        "receipts"
    ]
    assert len(charges) == 1  # the call in flight is billed; the next one never happened
    assert run["cost_credits"] == charges[0]["charged_credits"]


async def test_delete_keeps_history_revokes_grant_and_removes_temporal_schedule(
    api: httpx.AsyncClient, user: Tenant, client: Client
) -> None:
    created = await create_schedule(api, user)
    run = await trigger_and_wait(api, user, created["schedule_id"])
    resp = await api.delete(f"/api/v1/schedules/{created['schedule_id']}", headers=user.headers)
    assert resp.status_code == 204
    assert (
        await api.get(f"/api/v1/schedules/{created['schedule_id']}", headers=user.headers)
    ).status_code == 404
    assert [r["run_id"] for r in await schedule_runs(api, user, created["schedule_id"])] == [run["run_id"]]
    assert (await api.get(f"/api/v1/runs/{run['run_id']}", headers=user.headers)).json()[
        "status"
    ] == "success"
    with pytest.raises(RPCError, match="not found"):
        await client.get_schedule_handle(created["temporal_schedule_id"]).describe()
    grants = (await api.get("/api/v1/grants", headers=user.headers)).json()["grants"]
    assert grants[0]["revoked_at"] is not None
    again = await api.delete(f"/api/v1/schedules/{created['schedule_id']}", headers=user.headers)
    assert again.status_code == 404


async def test_other_tenants_schedule_and_grant_are_404(api: httpx.AsyncClient, user: Tenant) -> None:
    created = await create_schedule(api, user)
    grant = await create_grant(api, user)
    other = await create_user(api, credits=1_000_000, name="other")
    sid = created["schedule_id"]
    for method, path, body in (
        ("GET", f"/api/v1/schedules/{sid}", None),
        ("PATCH", f"/api/v1/schedules/{sid}", {"cron": "0 1 * * *"}),
        ("DELETE", f"/api/v1/schedules/{sid}", None),
        ("POST", f"/api/v1/schedules/{sid}/trigger", None),
        ("DELETE", f"/api/v1/grants/{grant['grant_id']}", None),
    ):
        resp = await api.request(method, path, json=body, headers=other.headers)
        assert resp.status_code == 404, (method, path)
    assert (await api.get("/api/v1/schedules", headers=other.headers)).json()["schedules"] == []
    using_foreign_grant = await api.post(
        "/api/v1/schedules", json={**POET, "grant_id": grant["grant_id"]}, headers=other.headers
    )
    assert using_foreign_grant.status_code == 404


async def test_grants_api_validates(api: httpx.AsyncClient, user: Tenant) -> None:
    bodies: list[dict[str, Any]] = [
        {"scopes": []},
        {"scopes": ["admin:*"]},
        {"scopes": ["graph:execute:poet"]},
        {"scopes": ["graph:execute:*"], "max_credits": -1},
        {"scopes": ["graph:execute:*"], "expires_at": "2001-01-01T00:00:00Z"},
    ]
    for body in bodies:
        resp = await api.post("/api/v1/grants", json=body, headers=user.headers)
        assert resp.status_code == 422, body
        assert resp.json()["error"]["code"] == "validation_error"
    assert (await api.get("/api/v1/grants", headers=user.headers)).json()["grants"] == []


async def test_temporal_unreachable_is_503_and_creation_leaves_nothing(
    settings: Settings, database: Database, user: Tenant
) -> None:
    # A Temporal that was reachable at start-up and then went away.
    doomed = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_cli(), ui=False)
    dead = doomed.client
    await doomed.shutdown()
    async with api_client(settings, database, dead) as api:
        resp = await api.post("/api/v1/schedules", json=POET, headers=user.headers)
        assert resp.status_code == 503
        assert resp.json()["error"]["code"] == "temporal_unavailable"
        run = await api.post(
            "/api/v1/graphs/langgraph:poet/runs", json={"input": {"topic": "x"}}, headers=user.headers
        )
        assert run.status_code == 503
    assert (
        await scalar(database, "SELECT count(*) FROM schedules WHERE owner_user_id = :u", u=user.user_id) == 0
    )
    assert (
        await scalar(database, "SELECT count(*) FROM execution_grants WHERE user_id = :u", u=user.user_id)
        == 0
    )
    assert (
        await scalar(database, "SELECT count(*) FROM graph_runs WHERE requested_by = :u", u=user.user_id) == 0
    )
