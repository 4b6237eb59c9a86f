"""Every ending is announced (``contracts.notify``), on real Postgres and Temporal: a schedule's
``notify_url`` (set, shown, changed and cleared through the API) announces the runs the schedule
starts; runs that end ``skipped`` at trigger time (a schedule slot or a webhook delivery its grant
refused: no workflow finalizes them) and runs that end ``cancelled`` are announced with their status."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from db.session import Database
from tests.db.queries import scalar
from tests.fakes.openai_server import FakeProvider
from tests.fakes.receiver import FakeReceiver, Received
from tests.helpers import Tenant, create_user, eventually, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")

POET = "langgraph:poet"
SCHEDULE = {"graph_id": POET, "input": {"topic": "tides"}, "cron": "0 9 * * *", "timezone": "UTC"}


async def announced(receiver: FakeReceiver, run_id: str, secret: str) -> dict[str, Any]:
    """The run's notification as the receiver got it, verified with the account's secret."""

    def of_run() -> list[Received]:
        return [r for r in receiver.log.snapshot() if r.headers.get("webhook-id") == f"run:{run_id}"]

    async def probe() -> list[Received]:
        return of_run()

    (received,) = await eventually(probe, until=lambda found: len(found) == 1, within=60)
    payload: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return payload


async def notify_secret(api: httpx.AsyncClient, user: Tenant) -> str:
    secret: str = (await api.get("/api/v1/me/notify-secret", headers=user.headers)).json()["secret"]
    return secret


async def scheduled_run(api: httpx.AsyncClient, user: Tenant, schedule_id: str) -> dict[str, Any]:
    """Run the schedule now and wait for the run its slot records to end."""
    resp = await api.post(f"/api/v1/schedules/{schedule_id}/trigger", headers=user.headers)
    assert resp.status_code == 202, resp.text

    async def ended() -> list[dict[str, Any]]:
        listed = await api.get("/api/v1/runs", params={"schedule_id": schedule_id}, headers=user.headers)
        return [r for r in listed.json()["runs"] if r["completed_at"]]

    (run,) = await eventually(ended, until=lambda found: len(found) == 1, within=60)
    return run


async def test_a_schedules_notify_url_is_set_shown_changed_cleared_and_checked(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    headers = user.headers
    refused = await api.post(
        "/api/v1/schedules", json={**SCHEDULE, "notify_url": "https://evil.example.com/h"}, headers=headers
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "notify_url_not_allowed"
    count = "SELECT count(*) FROM schedules WHERE owner_user_id = :u"
    assert await scalar(database, count, u=user.user_id) == 0  # nothing written

    first = "https://a.notify.test/first"
    created = await api.post(
        "/api/v1/schedules", json={**SCHEDULE, "enabled": False, "notify_url": first}, headers=headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["notify_url"] == first
    path = f"/api/v1/schedules/{created.json()['schedule_id']}"
    assert (await api.get(path, headers=headers)).json()["notify_url"] == first

    bad = await api.patch(path, json={"notify_url": "ftp://127.0.0.1/x"}, headers=headers)
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["code"] == "notify_url_not_allowed"
    assert (await api.get(path, headers=headers)).json()["notify_url"] == first

    second = "https://b.notify.test/second"
    changed = await api.patch(path, json={"notify_url": second}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["notify_url"] == second
    untouched = await api.patch(path, json={"cron": "0 10 * * *"}, headers=headers)  # absent: kept
    assert untouched.json()["notify_url"] == second
    cleared = await api.patch(path, json={"notify_url": None}, headers=headers)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["notify_url"] is None
    assert (await api.get(path, headers=headers)).json()["notify_url"] is None


async def test_every_run_a_schedule_starts_is_announced_to_its_notify_url(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    secret = await notify_secret(api, user)
    with FakeReceiver() as receiver:
        created = await api.post(
            "/api/v1/schedules",
            json={**SCHEDULE, "enabled": False, "notify_url": receiver.url},
            headers=user.headers,
        )
        assert created.status_code == 201, created.text
        run = await scheduled_run(api, user, created.json()["schedule_id"])
        assert run["status"] == "success", run
        payload = await announced(receiver, run["run_id"], secret)
    assert payload["data"]["run_id"] == run["run_id"]
    assert payload["data"]["run_kind"] == "system_scheduled"
    assert payload["data"]["status"] == "success"


async def test_a_schedule_slot_its_grant_refused_is_announced_skipped(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    secret = await notify_secret(api, user)
    grant = await api.post("/api/v1/grants", json={"scopes": [f"graph:execute:{POET}"]}, headers=user.headers)
    assert grant.status_code == 201, grant.text
    grant_id = grant.json()["grant_id"]
    with FakeReceiver() as receiver:
        created = await api.post(
            "/api/v1/schedules",
            json={**SCHEDULE, "enabled": False, "grant_id": grant_id, "notify_url": receiver.url},
            headers=user.headers,
        )
        assert created.status_code == 201, created.text
        assert (await api.delete(f"/api/v1/grants/{grant_id}", headers=user.headers)).status_code == 204
        run = await scheduled_run(api, user, created.json()["schedule_id"])
        assert (run["status"], run["error_code"]) == ("skipped", "grant_revoked"), run
        payload = await announced(receiver, run["run_id"], secret)
    assert payload["data"]["status"] == "skipped"
    assert payload["data"]["error_code"] == "grant_revoked"


async def test_a_webhook_run_its_grant_refused_at_delivery_is_announced_skipped(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    secret = await notify_secret(api, user)
    hook_secret = "github-secret-for-skipped-notify"
    grant = await api.post("/api/v1/grants", json={"scopes": [f"graph:execute:{POET}"]}, headers=user.headers)
    grant_id = grant.json()["grant_id"]
    with FakeReceiver() as receiver:
        source = f"n-{uuid.uuid4().hex[:8]}"
        trigger = await api.post(
            "/api/v1/webhook-triggers",
            json={
                "source": source,
                "graph_id": POET,
                "kind": "github",
                "secret": hook_secret,
                "grant_id": grant_id,
                "input": {"topic": "x"},
                "notify_url": receiver.url,
            },
            headers=user.headers,
        )
        assert trigger.status_code == 201, trigger.text
        assert (await api.delete(f"/api/v1/grants/{grant_id}", headers=user.headers)).status_code == 204
        body = json.dumps({"action": "opened"}).encode()
        resp = await api.post(
            f"/api/v1/webhooks/{source}",
            content=body,
            headers={
                "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": "sha256="
                + hmac.new(hook_secret.encode(), body, hashlib.sha256).hexdigest(),
            },
        )
        assert resp.status_code == 202, resp.text
        (started,) = resp.json()["runs"]
        assert started["status"] == "skipped"
        payload = await announced(receiver, started["run_id"], secret)
    assert payload["data"]["status"] == "skipped"
    assert payload["data"]["error_code"] == "grant_revoked"
    assert payload["data"]["run_kind"] == "system_webhook"


async def test_a_cancelled_run_is_announced_cancelled(
    api: httpx.AsyncClient, user: Tenant, fake_provider: FakeProvider
) -> None:
    secret = await notify_secret(api, user)
    gate = threading.Event()
    fake_provider.log.gate = gate  # the run's model call waits while it is cancelled
    try:
        with FakeReceiver() as receiver:
            resp = await start_run(api, user, POET, {"input": {"topic": "held"}, "notify_url": receiver.url})
            assert resp.status_code == 202, resp.text
            run_id = resp.json()["run_id"]

            async def waiting() -> int:
                return fake_provider.log.waiting

            await eventually(waiting, until=lambda n: n >= 1, within=30)
            cancel = await api.post(f"/api/v1/runs/{run_id}/cancel", headers=user.headers)
            assert cancel.status_code == 202, cancel.text
            gate.set()
            run = await wait_for_run(api, user, run_id, within=60)
            assert run["status"] == "cancelled", run
            payload = await announced(receiver, run_id, secret)
    finally:
        fake_provider.log.gate = None
        gate.set()
    assert payload["data"]["status"] == "cancelled"
    assert payload["data"]["error_code"] == run["error_code"]


async def test_a_slot_the_account_cannot_cover_is_skipped_insufficient_credits_and_announced(
    api: httpx.AsyncClient,
) -> None:
    """The slot's preflight is the API start's (``db.preflight``, LiteLLM prices)."""
    broke = await create_user(api, credits=1)
    secret = await notify_secret(api, broke)
    with FakeReceiver() as receiver:
        created = await api.post(
            "/api/v1/schedules",
            json={**SCHEDULE, "enabled": False, "notify_url": receiver.url},
            headers=broke.headers,
        )
        assert created.status_code == 201, created.text
        run = await scheduled_run(api, broke, created.json()["schedule_id"])
        assert (run["status"], run["error_code"]) == ("skipped", "insufficient_credits"), run
        api_start = await start_run(api, broke, POET, {"input": SCHEDULE["input"]})
        assert api_start.status_code == 402, api_start.text
        assert run["error_message"] == api_start.json()["error"]["message"]
        payload = await announced(receiver, run["run_id"], secret)
    assert payload["data"]["status"] == "skipped"
    assert payload["data"]["error_code"] == "insufficient_credits"
