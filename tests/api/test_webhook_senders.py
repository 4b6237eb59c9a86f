"""Native senders on real Postgres and Temporal: GitHub deliveries signed as GitHub documents it
(HMAC-SHA256 hex of the raw body), Stripe events signed by the ``stripe`` package's own
``WebhookSignature``, Standard Webhooks by the ``standardwebhooks`` package; every delivery leaves an
audit row (``GET /api/v1/webhook-deliveries``). SECRETS_ENCRYPTED_AT_REST: the tables, read raw,
hold no secret."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import pytest
import stripe
from temporalio.client import Client

from db.secrets import SecretBox
from db.session import Database
from runledger.contracts import ids
from tests.db.queries import rows
from tests.helpers import SECRET_KEYS, Tenant, create_user, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")

POET = "langgraph:poet"
GITHUB_SECRET = "it's-a-secret-typed-into-github"


def new_source(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def create_trigger(api: httpx.AsyncClient, user: Tenant, **body: Any) -> dict[str, Any]:
    resp = await api.post("/api/v1/webhook-triggers", json={"graph_id": POET, **body}, headers=user.headers)
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


async def deliveries(api: httpx.AsyncClient, user: Tenant, **params: Any) -> list[dict[str, Any]]:
    resp = await api.get("/api/v1/webhook-deliveries", params=params, headers=user.headers)
    assert resp.status_code == 200, resp.text
    found: list[dict[str, Any]] = resp.json()["webhook_deliveries"]
    return found


def assert_refused(resp: httpx.Response, status: int, code: str, case: object = None) -> None:
    assert resp.status_code == status, (case, resp.status_code, resp.text)
    assert resp.json()["error"]["code"] == code, (case, resp.text)


# -- GitHub ---------------------------------------------------------------------------------------


def github_headers(secret: str, body: bytes, event: str, delivery: str) -> dict[str, str]:
    """What GitHub sends: X-Hub-Signature-256 is sha256= + hex HMAC-SHA256 of the raw body."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": f"sha256={digest}",
        "User-Agent": "GitHub-Hookshot/abc123",
    }


def issue_event(action: str, title: str) -> bytes:
    return json.dumps({"action": action, "issue": {"title": title, "number": 7}}).encode()


async def test_github_delivery_ping_filter_redelivery_and_refusals_each_leave_an_audit_row(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    source = new_source("gh")
    trigger = await create_trigger(
        api,
        user,
        source=source,
        kind="github",
        secret=GITHUB_SECRET,
        events=["issues.opened"],
        input_mapping={"topic": "/issue/title"},
    )
    assert trigger["secret"] == GITHUB_SECRET  # the sender's own secret, as given
    assert (trigger["kind"], trigger["events"]) == ("github", ["issues.opened"])
    url = f"/api/v1/webhooks/{source}"

    ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    ping_id = str(uuid.uuid4())
    resp = await api.post(url, content=ping, headers=github_headers(GITHUB_SECRET, ping, "ping", ping_id))
    assert resp.status_code == 200, resp.text
    assert resp.json()["runs"] == []
    assert resp.json()["filtered_trigger_ids"] == [trigger["trigger_id"]]

    body = issue_event("opened", "a lighthouse")
    delivery = str(uuid.uuid4())
    resp = await api.post(url, content=body, headers=github_headers(GITHUB_SECRET, body, "issues", delivery))
    assert resp.status_code == 202, resp.text
    run_id = ids.webhook_run_id(source=source, delivery_id=delivery, trigger_id=trigger["trigger_id"])
    assert [(r["run_id"], r["created"]) for r in resp.json()["runs"]] == [(run_id, True)]
    assert resp.json()["event"] == "issues"
    run = await wait_for_run(api, user, run_id)
    assert (run["status"], run["input"], run["trigger_ref"]) == (
        "success",
        {"topic": "a lighthouse"},
        delivery,
    )

    # GitHub's "Redeliver" sends the same X-GitHub-Delivery: the same run, nothing new.
    again = await api.post(url, content=body, headers=github_headers(GITHUB_SECRET, body, "issues", delivery))
    assert again.status_code == 200, again.text
    assert [(r["run_id"], r["created"]) for r in again.json()["runs"]] == [(run_id, False)]

    closed = issue_event("closed", "a lighthouse")
    closed_id = str(uuid.uuid4())
    resp = await api.post(
        url, content=closed, headers=github_headers(GITHUB_SECRET, closed, "issues", closed_id)
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["runs"] == []  # issues.closed is not in events

    tampered = await api.post(
        url,
        content=issue_event("opened", "something else"),
        headers=github_headers(GITHUB_SECRET, body, "issues", str(uuid.uuid4())),
    )
    assert_refused(tampered, 401, "invalid_signature")
    wrong = await api.post(
        url, content=body, headers=github_headers("not-the-secret-at-all", body, "issues", str(uuid.uuid4()))
    )
    assert_refused(wrong, 401, "invalid_signature")
    unsigned = await api.post(url, content=body, headers={"X-GitHub-Event": "issues"})
    assert_refused(unsigned, 401, "invalid_signature")

    log = await deliveries(api, user, source=source)
    assert [(d["outcome"], d["http_status"]) for d in log] == [
        ("invalid_signature", 401),
        ("invalid_signature", 401),
        ("invalid_signature", 401),
        ("filtered", 200),
        ("duplicate", 200),
        ("accepted", 202),
        ("filtered", 200),
    ]
    assert [d["delivery_id"] for d in log[3:]] == [closed_id, delivery, delivery, ping_id]
    assert [d["event"] for d in log[3:]] == ["issues", "issues", "issues", "ping"]
    assert log[4]["run_ids"] == log[5]["run_ids"] == [run_id]
    assert all(d["trigger_id"] == trigger["trigger_id"] for d in log[3:])
    assert all(d["trigger_id"] is None and d["run_ids"] == [] for d in log[:3])
    assert log[5]["body_bytes"] == len(body)
    assert log[5]["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert GITHUB_SECRET not in json.dumps(log)

    # Filters and the cursor.
    assert [d["outcome"] for d in await deliveries(api, user, source=source, outcome="accepted")] == [
        "accepted"
    ]
    page = await api.get(
        "/api/v1/webhook-deliveries", params={"source": source, "limit": 4}, headers=user.headers
    )
    assert page.status_code == 200, page.text
    rest = await deliveries(api, user, source=source, cursor=page.json()["next_cursor"])
    assert [d["id"] for d in page.json()["webhook_deliveries"] + rest] == [d["id"] for d in log]
    assert (await deliveries(api, user, trigger_id=trigger["trigger_id"])) == log[3:]

    # Another tenant sees none of it.
    other = await create_user(api, name="other")
    assert await deliveries(api, other, source=source) == []


# -- Stripe ---------------------------------------------------------------------------------------


def stripe_event(event_type: str, description: str, event_id: str | None = None) -> str:
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": event_type,
            "data": {"object": {"object": "invoice", "description": description}},
        }
    )


def stripe_headers(payload: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Signed by the stripe package itself, as Stripe signs."""
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
    return {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header}


async def test_stripe_event_with_stripes_own_secret_and_signature(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    source = new_source("stripe")
    stripe_secret = "whsec_" + uuid.uuid4().hex  # Stripe's own format, as its dashboard shows it
    trigger = await create_trigger(
        api,
        user,
        source=source,
        kind="stripe",
        secret=stripe_secret,
        events=["invoice.paid"],
        input_mapping={"topic": "/data/object/description"},
    )
    url = f"/api/v1/webhooks/{source}"
    event_id = f"evt_{uuid.uuid4().hex[:24]}"
    payload = stripe_event("invoice.paid", "copper kettles", event_id)

    resp = await api.post(url, content=payload.encode(), headers=stripe_headers(payload, stripe_secret))
    assert resp.status_code == 202, resp.text
    run_id = ids.webhook_run_id(source=source, delivery_id=event_id, trigger_id=trigger["trigger_id"])
    assert resp.json()["delivery_id"] == event_id
    assert [r["run_id"] for r in resp.json()["runs"]] == [run_id]
    run = await wait_for_run(api, user, run_id)
    assert (run["status"], run["input"]) == ("success", {"topic": "copper kettles"})

    # Stripe retries an event with a fresh timestamp and the same id; a header with one v1 per
    # active secret (during Stripe's secret roll) verifies when any one of them does.
    stale_secret_sig = stripe_headers(payload, "whsec_rolled-out-old")["Stripe-Signature"].split(",")[1]
    rolled = stripe_headers(payload, stripe_secret, timestamp=int(time.time()) + 3)
    rolled["Stripe-Signature"] += "," + stale_secret_sig
    again = await api.post(url, content=payload.encode(), headers=rolled)
    assert again.status_code == 200, again.text
    assert [(r["run_id"], r["created"]) for r in again.json()["runs"]] == [(run_id, False)]

    other_type = stripe_event("customer.created", "ignored")
    filtered = await api.post(
        url, content=other_type.encode(), headers=stripe_headers(other_type, stripe_secret)
    )
    assert filtered.status_code == 200, filtered.text
    assert filtered.json()["runs"] == []

    now = int(time.time())
    fresh = stripe_event("invoice.paid", "late", f"evt_{uuid.uuid4().hex[:24]}")
    for skew in (-301 - 60, 301 + 60):
        late = await api.post(
            url, content=fresh.encode(), headers=stripe_headers(fresh, stripe_secret, timestamp=now + skew)
        )
        assert_refused(late, 401, "invalid_signature", skew)
    tampered = await api.post(
        url, content=fresh.replace("late", "LATE").encode(), headers=stripe_headers(fresh, stripe_secret)
    )
    assert_refused(tampered, 401, "invalid_signature")
    wrong = await api.post(url, content=fresh.encode(), headers=stripe_headers(fresh, "whsec_wrong"))
    assert_refused(wrong, 401, "invalid_signature")

    log = await deliveries(api, user, source=source)
    assert [d["outcome"] for d in log] == [
        "invalid_signature",
        "invalid_signature",
        "stale_timestamp",
        "stale_timestamp",
        "filtered",
        "duplicate",
        "accepted",
    ]
    assert [d["event"] for d in log[4:]] == ["customer.created", "invoice.paid", "invoice.paid"]
    assert log[5]["delivery_id"] == log[6]["delivery_id"] == event_id


# -- two triggers, unknown sources, standard filters ----------------------------------------------


async def test_two_triggers_with_one_secret_on_one_source_both_fire_from_one_delivery(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    source = new_source("two")
    first = await create_trigger(
        api, user, source=source, kind="github", secret=GITHUB_SECRET, input_mapping={"topic": "/issue/title"}
    )
    second = await create_trigger(
        api, user, source=source, kind="github", secret=GITHUB_SECRET, input={"topic": "fixed"}
    )
    body = issue_event("opened", "twin stars")
    delivery = str(uuid.uuid4())
    resp = await api.post(
        f"/api/v1/webhooks/{source}",
        content=body,
        headers=github_headers(GITHUB_SECRET, body, "issues", delivery),
    )
    assert resp.status_code == 202, resp.text
    expected = [
        (t["trigger_id"], ids.webhook_run_id(source=source, delivery_id=delivery, trigger_id=t["trigger_id"]))
        for t in (first, second)
    ]
    assert [(r["trigger_id"], r["run_id"]) for r in resp.json()["runs"]] == expected
    inputs = [(await wait_for_run(api, user, run_id))["input"] for _, run_id in expected]
    assert inputs == [{"topic": "twin stars"}, {"topic": "fixed"}]
    log = await deliveries(api, user, source=source)
    assert sorted((d["trigger_id"], d["outcome"], tuple(d["run_ids"])) for d in log) == sorted(
        (trigger_id, "accepted", (run_id,)) for trigger_id, run_id in expected
    )


async def test_an_unknown_source_is_answered_exactly_like_a_bad_signature(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    source = new_source("known")
    await create_trigger(api, user, source=source, kind="github", secret=GITHUB_SECRET, input={"topic": "x"})
    body = issue_event("opened", "probe")
    headers = github_headers("a-strangers-guess-1234", body, "issues", str(uuid.uuid4()))
    known = await api.post(f"/api/v1/webhooks/{source}", content=body, headers=headers)
    unknown = await api.post(f"/api/v1/webhooks/{new_source('nobody')}", content=body, headers=headers)
    invalid_name = await api.post("/api/v1/webhooks/NOT_A_SOURCE", content=body, headers=headers)
    for resp in (known, unknown, invalid_name):
        assert resp.status_code == 401, resp.text
    assert known.json() == unknown.json() == invalid_name.json()
    assert known.json()["error"]["code"] == "invalid_signature"


async def test_standard_trigger_filters_on_the_payload_type_and_generates_a_whsec_secret(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    from standardwebhooks.webhooks import Webhook

    source = new_source("std")
    trigger = await create_trigger(
        api, user, source=source, events=["order.created"], input_mapping={"topic": "/data/name"}
    )
    assert trigger["kind"] == "standard"
    assert trigger["secret"].startswith("whsec_")
    hook = Webhook(trigger["secret"])

    async def send(event_type: str) -> httpx.Response:
        msg_id = f"msg_{uuid.uuid4().hex}"
        payload = json.dumps({"type": event_type, "data": {"name": "a quiet harbour"}})
        from datetime import UTC, datetime

        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": hook.sign(msg_id, datetime.now(tz=UTC), payload),
        }
        return await api.post(f"/api/v1/webhooks/{source}", content=payload.encode(), headers=headers)

    other = await send("order.deleted")
    assert (other.status_code, other.json()["runs"]) == (200, [])
    wanted = await send("order.created")
    assert wanted.status_code == 202, wanted.text
    assert (await wait_for_run(api, user, wanted.json()["runs"][0]["run_id"]))["status"] == "success"
    assert [d["outcome"] for d in await deliveries(api, user, source=source)] == ["accepted", "filtered"]


async def test_bad_trigger_secrets_and_kinds_are_refused(api: httpx.AsyncClient, user: Tenant) -> None:
    cases: list[dict[str, Any]] = [
        {"kind": "gitlab"},
        {"kind": "standard", "secret": "whsec_not base64!!"},
        {"kind": "github", "secret": "short"},
        {"events": []},
    ]
    for body in cases:
        resp = await api.post(
            "/api/v1/webhook-triggers",
            json={"source": new_source("bad"), "graph_id": POET, "input": {"topic": "x"}, **body},
            headers=user.headers,
        )
        assert_refused(resp, 422, "validation_error", body)


# -- SECRETS_ENCRYPTED_AT_REST --------------------------------------------------------------------


async def test_SECRETS_ENCRYPTED_AT_REST_no_table_holds_a_secret_and_rotation_reencrypts(
    api: httpx.AsyncClient, user: Tenant, database: Database, client: Client
) -> None:
    source = new_source("sealed")
    given = await create_trigger(
        api, user, source=source, kind="github", secret=GITHUB_SECRET + "-sealed", input={"topic": "x"}
    )
    generated = await create_trigger(api, user, source=source, input={"topic": "y"})
    body = issue_event("opened", "sealed")
    resp = await api.post(
        f"/api/v1/webhooks/{source}",
        content=body,
        headers=github_headers(given["secret"], body, "issues", str(uuid.uuid4())),
    )
    assert resp.status_code == 202, resp.text
    first_run = await wait_for_run(api, user, resp.json()["runs"][0]["run_id"])

    secrets = [given["secret"], generated["secret"]]
    # NO_SECRETS_IN_HISTORY: the run's Temporal history carries no secret either.
    history = (await client.get_workflow_handle(first_run["workflow_id"]).fetch_history()).to_json()
    assert first_run["run_id"] in history
    assert not [s for s in secrets if s in history or s.removeprefix("whsec_") in history]
    for table in ("webhook_triggers", "webhook_deliveries", "graph_runs", "run_events"):
        dump = json.dumps(await rows(database, f"SELECT * FROM {table}"), default=str)
        for secret in secrets:
            assert secret not in dump, table
            assert secret.removeprefix("whsec_") not in dump, table

    stored = {
        r["id"]: r["secret_encrypted"]
        for r in await rows(
            database,
            "SELECT id::text AS id, secret_encrypted FROM webhook_triggers WHERE source = :s",
            s=source,
        )
    }
    newest, older = SECRET_KEYS.split(",")
    box = SecretBox([newest, older])
    assert box.decrypt(stored[given["trigger_id"]]) == given["secret"]

    # A trigger sealed under the older key still verifies; rotation moves it to the newest.
    old_only = SecretBox([older])
    async with database.transaction() as session:
        from sqlalchemy import text

        await session.execute(
            text("UPDATE webhook_triggers SET secret_encrypted = :v WHERE id = :id"),
            {"v": old_only.encrypt(given["secret"]), "id": given["trigger_id"]},
        )
    again = issue_event("opened", "older key")
    resp = await api.post(
        f"/api/v1/webhooks/{source}",
        content=again,
        headers=github_headers(given["secret"], again, "issues", str(uuid.uuid4())),
    )
    assert resp.status_code == 202, resp.text
    from db import webhooks

    async with database.transaction() as session:
        rotated = await webhooks.rotate_secrets(session, box=box)
    assert rotated >= 2
    token = (
        await rows(
            database,
            "SELECT secret_encrypted FROM webhook_triggers WHERE id = :id",
            id=given["trigger_id"],
        )
    )[0]["secret_encrypted"]
    assert SecretBox([newest]).decrypt(token) == given["secret"]
    await wait_for_run(api, user, resp.json()["runs"][0]["run_id"])


async def test_rotate_secrets_command_reencrypts_every_stored_secret(
    api: httpx.AsyncClient, user: Tenant, database: Database, database_url: str
) -> None:
    import asyncio
    import os
    import sys

    source = new_source("rot")
    created = await create_trigger(api, user, source=source, input={"topic": "x"})
    older = SECRET_KEYS.split(",")[1]
    async with database.transaction() as session:
        from sqlalchemy import text

        # As if written before the newest key was added.
        await session.execute(
            text("UPDATE webhook_triggers SET secret_encrypted = :v WHERE id = :id"),
            {"v": SecretBox([older]).encrypt(created["secret"]), "id": created["trigger_id"]},
        )
    env = {**os.environ, "DATABASE_URL": database_url, "RUNLEDGER_SECRET_KEYS": SECRET_KEYS}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runledger.cli",
        "rotate-secrets",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    assert "re-encrypted under the newest key" in out.decode()
    token = (
        await rows(
            database, "SELECT secret_encrypted FROM webhook_triggers WHERE id = :id", id=created["trigger_id"]
        )
    )[0]["secret_encrypted"]
    assert SecretBox([SECRET_KEYS.split(",")[0]]).decrypt(token) == created["secret"]

    no_keys = {k: v for k, v in env.items() if k != "RUNLEDGER_SECRET_KEYS"}
    refused = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runledger.cli",
        "rotate-secrets",
        env=no_keys,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(refused.communicate(), timeout=120)
    assert refused.returncode == 2
    assert "RUNLEDGER_SECRET_KEYS is not set" in err.decode()
