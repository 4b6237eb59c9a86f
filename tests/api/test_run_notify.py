"""Signed run-completion notifications on real Postgres and Temporal: the POST is verified with the
``standardwebhooks`` package and the account's secret; a failing receiver is retried by Temporal
with backoff, each attempt recorded; a receiver that is down never delays or fails the run."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.fakes.loopback import free_port
from tests.fakes.receiver import FakeReceiver
from tests.helpers import Tenant, eventually, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")

POET = "langgraph:poet"


async def notifications(api: httpx.AsyncClient, user: Tenant, run_id: str) -> list[dict[str, Any]]:
    resp = await api.get(f"/api/v1/runs/{run_id}/notifications", headers=user.headers)
    assert resp.status_code == 200, resp.text
    found: list[dict[str, Any]] = resp.json()["notifications"]
    return found


async def test_a_run_is_announced_signed_after_the_receivers_failures_are_retried(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    secret = (await api.get("/api/v1/me/notify-secret", headers=user.headers)).json()["secret"]
    with FakeReceiver(fail_first=2) as receiver:
        resp = await start_run(api, user, POET, {"input": {"topic": "bells"}, "notify_url": receiver.url})
        assert resp.status_code == 202, resp.text
        run_id = resp.json()["run_id"]
        run = await wait_for_run(api, user, run_id)
        assert run["status"] == "success", run

        attempts = await eventually(
            lambda: notifications(api, user, run_id),
            until=lambda a: any(n["delivered"] for n in a),
            within=60,
        )
        assert [(n["attempt"], n["http_status"], n["delivered"]) for n in attempts] == [
            (1, 503, False),
            (2, 503, False),
            (3, 204, True),
        ]
        delivered = receiver.log.snapshot()[-1]
    payload = Webhook(secret).verify(delivered.body, delivered.headers)
    assert delivered.headers["webhook-id"] == f"run:{run_id}"
    assert payload["type"] == "run.completed"
    assert payload["data"]["run_id"] == run_id
    assert payload["data"]["status"] == "success"
    assert payload["data"]["cost_credits"] == run["cost_credits"]
    # Another account's secret does not verify it.
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=").verify(
            delivered.body, delivered.headers
        )


async def test_a_receiver_that_is_down_never_delays_or_fails_the_run(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    down = f"http://127.0.0.1:{free_port()}/nobody-listens"
    resp = await start_run(api, user, POET, {"input": {"topic": "silence"}, "notify_url": down})
    assert resp.status_code == 202, resp.text
    run = await wait_for_run(api, user, resp.json()["run_id"])
    assert run["status"] == "success", run
    attempts = await eventually(
        lambda: notifications(api, user, run["run_id"]), until=lambda a: len(a) >= 2, within=60
    )
    assert not any(n["delivered"] for n in attempts)
    assert all(n["http_status"] is None and n["error"] for n in attempts)


async def test_notify_urls_off_the_allow_list_are_refused(api: httpx.AsyncClient, user: Tenant) -> None:
    for url in ("https://evil.example.com/hook", "ftp://127.0.0.1/x", "http://user:pw@127.0.0.1/x"):
        resp = await start_run(api, user, POET, {"input": {"topic": "x"}, "notify_url": url})
        assert resp.status_code == 422, (url, resp.text)
        assert resp.json()["error"]["code"] == "notify_url_not_allowed"
        trigger = await api.post(
            "/api/v1/webhook-triggers",
            json={
                "source": f"n-{uuid.uuid4().hex[:8]}",
                "graph_id": POET,
                "input": {"topic": "x"},
                "notify_url": url,
            },
            headers=user.headers,
        )
        assert trigger.status_code == 422, (url, trigger.text)
    ok = await start_run(api, user, POET, {"input": {"topic": "x"}, "notify_url": "https://a.notify.test/h"})
    assert ok.status_code == 202, ok.text
    await wait_for_run(api, user, ok.json()["run_id"])


async def test_a_webhook_triggers_runs_are_announced_to_its_notify_url(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    secret = "github-secret-for-notify-tests"
    with FakeReceiver() as receiver:
        source = f"n-{uuid.uuid4().hex[:8]}"
        trigger = await api.post(
            "/api/v1/webhook-triggers",
            json={
                "source": source,
                "graph_id": POET,
                "kind": "github",
                "secret": secret,
                "input": {"topic": "x"},
                "notify_url": receiver.url,
            },
            headers=user.headers,
        )
        assert trigger.status_code == 201, trigger.text
        assert trigger.json()["notify_url"] == receiver.url
        body = json.dumps({"action": "opened"}).encode()
        sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        resp = await api.post(
            f"/api/v1/webhooks/{source}",
            content=body,
            headers={
                "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": f"sha256={sig}",
            },
        )
        assert resp.status_code == 202, resp.text
        run_id = resp.json()["runs"][0]["run_id"]
        await wait_for_run(api, user, run_id)
        await eventually(
            lambda: notifications(api, user, run_id),
            until=lambda a: any(n["delivered"] for n in a),
            within=60,
        )
        (received,) = receiver.log.snapshot()
    assert json.loads(received.body)["data"]["run_id"] == run_id
