"""Webhook triggers and signed deliveries through the API, on real Postgres and a real Temporal dev
server: ``standard`` triggers, signed by the ``standardwebhooks`` package as a Standard Webhooks
sender signs. Names carry RUN_ID_CANONICAL, BILLING_VIA_GRANT and GRANT_VALIDATED_TWICE."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from db import catalog, preflight, prices
from db.session import Database
from runledger.config import Settings
from runledger.contracts import ids
from runledger.contracts.catalog import per_call_credits
from runledger.contracts.webhooks import MAX_BODY_BYTES, TOLERANCE_SECONDS
from tests.db.queries import count_runs, rows, scalar
from tests.helpers import Tenant, create_user, top_up, wait_for_run

DELIVERY_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

pytestmark = pytest.mark.usefixtures("worker")

POET = "langgraph:poet"
TRIGGER_FIELDS = {
    "trigger_id",
    "source",
    "kind",
    "events",
    "graph_id",
    "input",
    "input_mapping",
    "grant_id",
    "url",
    "notify_url",
    "created_at",
}


def new_source() -> str:
    """Sources are global names and the database is shared by the session: one per test."""
    return f"gh-{uuid.uuid4().hex[:8]}"


def new_delivery_id() -> str:
    return f"dlv-{uuid.uuid4()}"


def issue(title: Any) -> bytes:
    """A GitHub-like payload; the default mapping reads the topic from ``/issue/title``."""
    return json.dumps({"action": "opened", "issue": {"title": title}}).encode()


def signed_headers(
    secret: str, body: bytes, delivery_id: str, timestamp: int | None = None
) -> dict[str, str]:
    """Signed by the Standard Webhooks reference package, as a sender signs."""
    ts = int(time.time()) if timestamp is None else timestamp
    signed = Webhook(secret).sign(delivery_id, datetime.fromtimestamp(ts, tz=UTC), body.decode())
    return {
        "Content-Type": "application/json",
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: signed,
    }


async def deliver(
    api: httpx.AsyncClient,
    source: str,
    secret: str,
    body: bytes,
    delivery_id: str,
    timestamp: int | None = None,
) -> httpx.Response:
    """A delivery as a sender makes it: raw body bytes, signed with ``secret``, no bearer token."""
    return await api.post(
        f"/api/v1/webhooks/{source}",
        content=body,
        headers=signed_headers(secret, body, delivery_id, timestamp),
    )


async def create_trigger(
    api: httpx.AsyncClient, user: Tenant, source: str, **overrides: Any
) -> dict[str, Any]:
    body = {"source": source, "graph_id": POET, "input_mapping": {"topic": "/issue/title"}, **overrides}
    resp = await api.post("/api/v1/webhook-triggers", json=body, headers=user.headers)
    assert resp.status_code == 201, resp.text
    trigger: dict[str, Any] = resp.json()
    return trigger


async def create_grant(api: httpx.AsyncClient, user: Tenant) -> dict[str, Any]:
    resp = await api.post("/api/v1/grants", json={"scopes": [f"graph:execute:{POET}"]}, headers=user.headers)
    assert resp.status_code == 201, resp.text
    grant: dict[str, Any] = resp.json()
    return grant


async def list_triggers(api: httpx.AsyncClient, user: Tenant) -> list[dict[str, Any]]:
    resp = await api.get("/api/v1/webhook-triggers", headers=user.headers)
    assert resp.status_code == 200, resp.text
    triggers: list[dict[str, Any]] = resp.json()["webhook_triggers"]
    return triggers


async def list_runs(api: httpx.AsyncClient, user: Tenant) -> list[dict[str, Any]]:
    resp = await api.get("/api/v1/runs", headers=user.headers)
    assert resp.status_code == 200, resp.text
    runs: list[dict[str, Any]] = resp.json()["runs"]
    return runs


async def balance(api: httpx.AsyncClient, user: Tenant) -> int:
    resp = await api.get("/api/v1/me", headers=user.headers)
    assert resp.status_code == 200, resp.text
    return int(resp.json()["balance_credits"])


async def receipts(api: httpx.AsyncClient, user: Tenant, run_id: str) -> list[dict[str, Any]]:
    resp = await api.get(f"/api/v1/runs/{run_id}/charges", headers=user.headers)
    assert resp.status_code == 200, resp.text
    found: list[dict[str, Any]] = resp.json()["receipts"]
    return found


def assert_error(resp: httpx.Response, status: int, code: str, case: object = None) -> None:
    assert resp.status_code == status, (case, resp.status_code, resp.text)
    assert resp.json()["error"]["code"] == code, (case, resp.text)


def started(resp: httpx.Response) -> list[tuple[str, str, bool]]:
    """(trigger_id, run_id, created) of each run a delivery answer reports."""
    return [(r["trigger_id"], r["run_id"], r["created"]) for r in resp.json()["runs"]]


def run_id_of(source: str, delivery_id: str, trigger: dict[str, Any]) -> str:
    return ids.webhook_run_id(source=source, delivery_id=delivery_id, trigger_id=trigger["trigger_id"])


async def test_create_shows_the_secret_once_mints_a_scoped_grant_and_lists_only_own_triggers(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    source = new_source()
    created = await create_trigger(api, user, source, input={"topic": "fallback"})
    assert set(created) == {*TRIGGER_FIELDS, "secret"}
    assert created["source"] == source
    assert created["graph_id"] == POET
    assert created["input"] == {"topic": "fallback"}
    assert created["input_mapping"] == {"topic": "/issue/title"}
    assert created["url"].endswith(f"/api/v1/webhooks/{source}")
    assert isinstance(created["secret"], str)
    assert len(created["secret"]) >= 32

    grants = (await api.get("/api/v1/grants", headers=user.headers)).json()["grants"]
    assert [(g["grant_id"], g["scopes"]) for g in grants] == [
        (created["grant_id"], [f"graph:execute:{POET}"])
    ]

    second = await create_trigger(api, user, source)  # a second trigger on the same source
    assert second["trigger_id"] != created["trigger_id"]
    assert second["secret"] != created["secret"]

    resp = await api.get("/api/v1/webhook-triggers", headers=user.headers)
    assert resp.status_code == 200, resp.text
    assert created["secret"] not in resp.text
    assert second["secret"] not in resp.text
    listed = {t["trigger_id"]: t for t in resp.json()["webhook_triggers"]}
    assert set(listed) == {created["trigger_id"], second["trigger_id"]}
    for shown in (created, second):
        item = listed[shown["trigger_id"]]
        assert set(item) == TRIGGER_FIELDS  # no secret
        for field in TRIGGER_FIELDS - {"created_at"}:
            assert item[field] == shown[field], field
        assert datetime.fromisoformat(item["created_at"]) == datetime.fromisoformat(shown["created_at"])

    other = await create_user(api, name="other")
    assert await list_triggers(api, other) == []


async def test_invalid_trigger_definitions_are_refused_and_write_nothing(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    other = await create_user(api, name="other")
    foreign = await create_grant(api, other)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"source": "GitHub"}, 422, "validation_error"),
        ({"source": "-github"}, 422, "validation_error"),
        ({"source": "git/hub"}, 422, "validation_error"),
        ({"source": ""}, 422, "validation_error"),
        ({"source": "a" * 64}, 422, "validation_error"),
        ({"graph_id": "langgraph:nope"}, 404, "graph_not_found"),
        ({"input_mapping": {"topic": "abc"}}, 422, "validation_error"),
        ({"input_mapping": {}, "input": {"wrong": 1}}, 422, "validation_error"),
        ({"input_mapping": {}, "input": {}}, 422, "validation_error"),
        ({"grant_id": str(uuid.uuid4())}, 404, "grant_not_found"),
        ({"grant_id": foreign["grant_id"]}, 404, "grant_not_found"),
    ]
    for override, status, code in cases:
        body = {
            "source": new_source(),
            "graph_id": POET,
            "input_mapping": {"topic": "/issue/title"},
            **override,
        }
        resp = await api.post("/api/v1/webhook-triggers", json=body, headers=user.headers)
        assert_error(resp, status, code, override)
    assert await list_triggers(api, user) == []
    assert (
        await scalar(database, "SELECT count(*) FROM execution_grants WHERE user_id = :u", u=user.user_id)
        == 0
    )


async def test_RUN_ID_CANONICAL_webhook_delivery_starts_one_system_webhook_run_with_mapped_input(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    source = new_source()
    trigger = await create_trigger(api, user, source, input={"topic": "fallback"})
    before = await count_runs(database, user.billing_account_id)
    delivery_id = new_delivery_id()

    resp = await deliver(api, source, trigger["secret"], issue("a lighthouse"), delivery_id)
    assert resp.status_code == 202, resp.text
    run_id = run_id_of(source, delivery_id, trigger)
    assert resp.json()["delivery_id"] == delivery_id
    assert started(resp) == [(trigger["trigger_id"], run_id, True)]
    assert isinstance(resp.json()["runs"][0]["status"], str)
    assert await count_runs(database, user.billing_account_id) == before + 1

    run = await wait_for_run(api, user, run_id)
    assert run["status"] == "success", run
    assert run["workflow_id"] == ids.graph_run_workflow_id(run_id)
    assert run["graph_id"] == POET
    assert run["run_kind"] == "system_webhook"
    assert run["trigger_source"] == f"webhook:{source}"
    assert run["trigger_ref"] == delivery_id
    assert run["input"] == {"topic": "a lighthouse"}  # the mapped field overrides the fixed input
    assert run["output"]


async def test_RUN_ID_CANONICAL_webhook_redelivery_is_200_with_the_same_run_and_no_new_row(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    source = new_source()
    trigger = await create_trigger(api, user, source, input={}, input_mapping={"topic": ""})
    body = json.dumps("a quiet harbour").encode()  # "" points at the whole payload
    delivery_id = new_delivery_id()
    run_id = run_id_of(source, delivery_id, trigger)

    first = await deliver(api, source, trigger["secret"], body, delivery_id)
    assert first.status_code == 202, first.text
    assert started(first) == [(trigger["trigger_id"], run_id, True)]
    run = await wait_for_run(api, user, run_id)
    assert run["status"] == "success", run
    assert run["input"] == {"topic": "a quiet harbour"}
    rows_after_first = await count_runs(database, user.billing_account_id)

    # After the run finished, a re-delivery signed afresh still finds the same run.
    again = await deliver(api, source, trigger["secret"], body, delivery_id, timestamp=int(time.time()) + 5)
    assert again.status_code == 200, again.text
    assert again.json()["delivery_id"] == delivery_id
    assert started(again) == [(trigger["trigger_id"], run_id, False)]
    assert await count_runs(database, user.billing_account_id) == rows_after_first
    assert len(await receipts(api, user, run_id)) == 1

    # Another delivery id is another run.
    other_id = new_delivery_id()
    other = await deliver(api, source, trigger["secret"], body, other_id)
    assert other.status_code == 202, other.text
    assert started(other) == [(trigger["trigger_id"], run_id_of(source, other_id, trigger), True)]
    assert await count_runs(database, user.billing_account_id) == rows_after_first + 1
    await wait_for_run(api, user, run_id_of(source, other_id, trigger))


async def test_RUN_ID_CANONICAL_webhook_concurrent_duplicate_deliveries_create_one_run(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    source = new_source()
    trigger = await create_trigger(api, user, source)
    body = issue("twin stars")
    delivery_id = new_delivery_id()
    before = await count_runs(database, user.billing_account_id)

    answers = await asyncio.gather(
        *(deliver(api, source, trigger["secret"], body, delivery_id) for _ in range(3))
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 202], [a.text for a in answers]
    run_id = run_id_of(source, delivery_id, trigger)
    assert sorted(started(a)[0][2] for a in answers) == [False, False, True]
    assert {started(a)[0][1] for a in answers} == {run_id}
    assert await count_runs(database, user.billing_account_id) == before + 1
    assert (await wait_for_run(api, user, run_id))["status"] == "success"


async def test_BILLING_VIA_GRANT_webhook_run_is_charged_to_the_trigger_owner_and_its_grant(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    source = new_source()
    trigger = await create_trigger(api, user, source)
    balance_before = await balance(api, user)
    delivery_id = new_delivery_id()

    resp = await deliver(api, source, trigger["secret"], issue("copper kettles"), delivery_id)
    assert resp.status_code == 202, resp.text
    run = await wait_for_run(api, user, run_id_of(source, delivery_id, trigger))
    assert run["status"] == "success", run
    assert run["billing_account_id"] == user.billing_account_id

    charges = await receipts(api, user, run["run_id"])
    assert len(charges) == 1
    assert run["cost_credits"] == charges[0]["charged_credits"]
    assert run["cost_credits"] > 0
    assert balance_before - await balance(api, user) == run["cost_credits"]
    grants = {
        g["grant_id"]: g for g in (await api.get("/api/v1/grants", headers=user.headers)).json()["grants"]
    }
    assert grants[trigger["grant_id"]]["spent_credits"] == run["cost_credits"]


async def test_a_webhook_delivery_the_account_cannot_cover_is_refused_like_an_api_start(
    api: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    """The trigger-time preflight is the API start's (``db.preflight``: the run's estimate at the
    LiteLLM price the workers publish): an account one credit short of the estimate — far more than
    one call's flat allowance of old — gets 402 from an API start, and its webhook run is recorded
    ``skipped`` / ``insufficient_credits`` with the same message (no 402 for a sender, SPEC §3);
    nothing is held or charged, and a grant without room for one call at its bound is refused too."""
    payload = {"topic": "empty pockets"}
    async with database.transaction() as session:
        poet = await catalog.current_graph(session, POET)
        assert poet is not None
        needed = await preflight.run_estimate(session, poet, payload, settings.markup)
    assert needed - 1 > 2_000  # the flat per-call check this replaces would have let it through
    broke = await create_user(api, credits=needed - 1)
    api_start = await api.post(f"/api/v1/graphs/{POET}/runs", json={"input": payload}, headers=broke.headers)
    assert api_start.status_code == 402, api_start.text
    assert api_start.json()["error"]["code"] == "insufficient_credits"

    source = new_source()
    trigger = await create_trigger(api, broke, source)
    delivery_id = new_delivery_id()
    resp = await deliver(api, source, trigger["secret"], issue(payload["topic"]), delivery_id)
    assert resp.status_code == 202, resp.text
    assert resp.json()["runs"][0]["status"] == "skipped"
    run_id = run_id_of(source, delivery_id, trigger)
    run = (await api.get(f"/api/v1/runs/{run_id}", headers=broke.headers)).json()
    assert (run["status"], run["error_code"]) == ("skipped", "insufficient_credits"), run
    assert run["error_message"] == api_start.json()["error"]["message"]
    assert run["cost_credits"] == 0
    assert await receipts(api, broke, run_id) == []
    assert await balance(api, broke) == needed - 1
    held = "SELECT count(*) FROM credit_reservations WHERE billing_account_id = :a"
    assert await scalar(database, held, a=broke.billing_account_id) == 0
    audit = await api.get(
        "/api/v1/webhook-deliveries", params={"trigger_id": trigger["trigger_id"]}, headers=broke.headers
    )
    assert [(d["outcome"], d["run_ids"]) for d in audit.json()["webhook_deliveries"]] == [
        ("insufficient_credits", [run_id])
    ]

    # One credit more covers the estimate: the next delivery runs.
    await top_up(api, broke.billing_account_id, 1)
    covered = new_delivery_id()
    resp = await deliver(api, source, trigger["secret"], issue(payload["topic"]), covered)
    assert resp.status_code == 202, resp.text
    assert (await wait_for_run(api, broke, run_id_of(source, covered, trigger)))["status"] == "success"

    # A grant is asked for room for one call at the same price (what authorize asks).
    rich = await create_user(api, credits=100 * needed)
    one_call = per_call_credits(poet, needed)
    grant = await api.post(
        "/api/v1/grants",
        json={"scopes": [f"graph:execute:{POET}"], "max_credits": one_call - 1},
        headers=rich.headers,
    )
    assert grant.status_code == 201, grant.text
    source = new_source()
    capped = await create_trigger(api, rich, source, grant_id=grant.json()["grant_id"])
    delivery_id = new_delivery_id()
    resp = await deliver(api, source, capped["secret"], issue(payload["topic"]), delivery_id)
    assert resp.status_code == 202, resp.text
    run = (
        await api.get(f"/api/v1/runs/{run_id_of(source, delivery_id, capped)}", headers=rich.headers)
    ).json()
    assert (run["status"], run["error_code"]) == ("skipped", "grant_budget_exhausted"), run


async def test_a_delivery_before_any_worker_priced_the_model_is_503_logged_unavailable_and_starts_nothing(
    api: httpx.AsyncClient, database: Database, user: Tenant
) -> None:
    """Before a worker has published the graph's model price the run cannot be estimated: the sender
    gets 503 ``model_not_priced`` (its retry is taken later), no run is recorded, and the audit log
    still has the delivery (outcome ``unavailable``)."""
    source = new_source()
    trigger = await create_trigger(api, user, source)
    model = prices.WORKER_DEFAULT  # the built-in poet names no model: the workers' default prices it
    saved = await scalar(
        database,
        "SELECT json_build_array(input_usd_per_token::text, output_usd_per_token::text) "
        "FROM model_prices WHERE model = :m",
        m=model,
    )
    assert saved is not None
    runs_before = await count_runs(database, user.billing_account_id)
    try:
        await rows(database, "DELETE FROM model_prices WHERE model = :m RETURNING model", m=model)
        resp = await deliver(api, source, trigger["secret"], issue("too early"), new_delivery_id())
    finally:
        await rows(
            database,
            "INSERT INTO model_prices (model, input_usd_per_token, output_usd_per_token) "
            "VALUES (:m, CAST(:i AS numeric), CAST(:o AS numeric)) "
            "ON CONFLICT (model) DO NOTHING RETURNING model",
            m=model,
            i=saved[0],
            o=saved[1],
        )
    assert_error(resp, 503, "model_not_priced")
    assert await count_runs(database, user.billing_account_id) == runs_before
    audit = await api.get(
        "/api/v1/webhook-deliveries", params={"trigger_id": trigger["trigger_id"]}, headers=user.headers
    )
    assert [(d["outcome"], d["http_status"], d["run_ids"]) for d in audit.json()["webhook_deliveries"]] == [
        ("unavailable", 503, [])
    ]


async def test_refused_deliveries_401_404_413_start_no_run(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    source = new_source()
    trigger = await create_trigger(api, user, source)
    secret = trigger["secret"]
    body = issue("a lighthouse")
    before = await count_runs(database, user.billing_account_id)

    # An unknown source is answered exactly like a bad signature (a stranger cannot tell them apart).
    unknown = await deliver(api, new_source(), secret, body, new_delivery_id())
    assert_error(unknown, 401, "invalid_signature")

    too_large = b"x" * (MAX_BODY_BYTES + 1)
    assert_error(await deliver(api, source, secret, too_large, new_delivery_id()), 413, "payload_too_large")

    for missing in (DELIVERY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER):
        headers = signed_headers(secret, body, new_delivery_id())
        del headers[missing]
        resp = await api.post(f"/api/v1/webhooks/{source}", content=body, headers=headers)
        assert_error(resp, 401, "invalid_signature", f"without {missing}")

    tampered = await api.post(
        f"/api/v1/webhooks/{source}",
        content=issue("something else"),
        headers=signed_headers(secret, body, new_delivery_id()),
    )
    assert_error(tampered, 401, "invalid_signature", "body changed after signing")
    foreign_secret = "whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode()
    assert_error(
        await deliver(api, source, foreign_secret, body, new_delivery_id()), 401, "invalid_signature"
    )
    now = int(time.time())
    for skew in (-TOLERANCE_SECONDS - 60, TOLERANCE_SECONDS + 60):
        late = await deliver(api, source, secret, body, new_delivery_id(), timestamp=now + skew)
        assert_error(late, 401, "invalid_signature", f"timestamp skewed by {skew}s")

    assert await count_runs(database, user.billing_account_id) == before
    # The same trigger takes a well-signed delivery: the refusals above were the checks' doing.
    accepted = await deliver(api, source, secret, body, new_delivery_id())
    assert accepted.status_code == 202, accepted.text
    assert await count_runs(database, user.billing_account_id) == before + 1
    await wait_for_run(api, user, started(accepted)[0][1])


async def test_validly_signed_bad_payloads_are_422_and_start_no_run(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    source = new_source()
    trigger = await create_trigger(api, user, source)
    secret = trigger["secret"]
    before = await count_runs(database, user.billing_account_id)

    cases: list[tuple[bytes, str]] = [
        (b"not json {", "invalid_payload"),
        (b"", "invalid_payload"),
        (json.dumps({"action": "opened", "issue": {}}).encode(), "validation_error"),  # no /issue/title
        (json.dumps(["opened"]).encode(), "validation_error"),
        (issue(""), "validation_error"),  # topic has minLength 1
        (issue(42), "validation_error"),  # topic must be a string
    ]
    for body, code in cases:
        delivery_id = new_delivery_id()
        resp = await deliver(api, source, secret, body, delivery_id)
        assert_error(resp, 422, code, body)
        missing = await api.get(
            f"/api/v1/runs/{run_id_of(source, delivery_id, trigger)}", headers=user.headers
        )
        assert missing.status_code == 404, (body, missing.text)
    assert await count_runs(database, user.billing_account_id) == before


async def test_two_tenants_on_one_source_only_the_signers_trigger_fires(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    other = await create_user(api, credits=5_000_000, name="other")
    source = new_source()
    mine = await create_trigger(api, user, source)
    theirs = await create_trigger(api, other, source)
    their_rows = await count_runs(database, other.billing_account_id)
    delivery_id = new_delivery_id()

    resp = await deliver(api, source, mine["secret"], issue("shared harbours"), delivery_id)
    assert resp.status_code == 202, resp.text
    my_run_id = run_id_of(source, delivery_id, mine)
    assert started(resp) == [(mine["trigger_id"], my_run_id, True)]
    assert (await wait_for_run(api, user, my_run_id))["status"] == "success"
    assert await count_runs(database, other.billing_account_id) == their_rows
    assert await list_runs(api, other) == []
    assert (await api.get(f"/api/v1/runs/{my_run_id}", headers=other.headers)).status_code == 404

    # The other tenant's own signature on the same delivery id fires only their trigger.
    their_answer = await deliver(api, source, theirs["secret"], issue("shared harbours"), delivery_id)
    assert their_answer.status_code == 202, their_answer.text
    their_run_id = run_id_of(source, delivery_id, theirs)
    assert started(their_answer) == [(theirs["trigger_id"], their_run_id, True)]
    assert (await wait_for_run(api, other, their_run_id))["status"] == "success"
    assert [r["run_id"] for r in await list_runs(api, other)] == [their_run_id]
    assert their_run_id not in [r["run_id"] for r in await list_runs(api, user)]


async def test_GRANT_VALIDATED_TWICE_delivery_after_grant_revoked_is_accepted_and_run_skipped(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    grant = await create_grant(api, user)
    source = new_source()
    trigger = await create_trigger(api, user, source, grant_id=grant["grant_id"])
    assert trigger["grant_id"] == grant["grant_id"]
    grants = (await api.get("/api/v1/grants", headers=user.headers)).json()["grants"]
    assert [g["grant_id"] for g in grants] == [grant["grant_id"]]  # no second grant minted

    revoked = await api.delete(f"/api/v1/grants/{grant['grant_id']}", headers=user.headers)
    assert revoked.status_code == 204, revoked.text
    balance_before = await balance(api, user)
    delivery_id = new_delivery_id()

    resp = await deliver(api, source, trigger["secret"], issue("closed doors"), delivery_id)
    assert resp.status_code == 202, resp.text
    run_id = run_id_of(source, delivery_id, trigger)
    assert started(resp) == [(trigger["trigger_id"], run_id, True)]
    run = await wait_for_run(api, user, run_id)
    assert run["status"] == "skipped", run
    assert run["error_code"] == "grant_revoked"
    assert run["cost_credits"] == 0
    assert await receipts(api, user, run_id) == []
    assert await balance(api, user) == balance_before


async def test_delete_trigger_stops_deliveries_keeps_runs_and_is_owner_only(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    source = new_source()
    first = await create_trigger(api, user, source)
    second = await create_trigger(api, user, source)
    delivery_id = new_delivery_id()
    resp = await deliver(api, source, first["secret"], issue("old maps"), delivery_id)
    assert resp.status_code == 202, resp.text
    run = await wait_for_run(api, user, run_id_of(source, delivery_id, first))
    assert run["status"] == "success", run

    other = await create_user(api, name="other")
    for trigger_id in (first["trigger_id"], str(uuid.uuid4())):
        resp = await api.delete(f"/api/v1/webhook-triggers/{trigger_id}", headers=other.headers)
        assert_error(resp, 404, "webhook_trigger_not_found", trigger_id)
    # Not an id at all: refused at the boundary (a canonical UUID is required).
    resp = await api.delete("/api/v1/webhook-triggers/not-a-uuid", headers=other.headers)
    assert_error(resp, 422, "validation_error")
    assert {t["trigger_id"] for t in await list_triggers(api, user)} == {
        first["trigger_id"],
        second["trigger_id"],
    }

    rows = await count_runs(database, user.billing_account_id)
    deleted = await api.delete(f"/api/v1/webhook-triggers/{first['trigger_id']}", headers=user.headers)
    assert deleted.status_code == 204, deleted.text
    assert [t["trigger_id"] for t in await list_triggers(api, user)] == [second["trigger_id"]]
    # A trigger remains on the source, but none verifies the deleted one's signature.
    orphan = await deliver(api, source, first["secret"], issue("old maps"), new_delivery_id())
    assert_error(orphan, 401, "invalid_signature")

    deleted = await api.delete(f"/api/v1/webhook-triggers/{second['trigger_id']}", headers=user.headers)
    assert deleted.status_code == 204, deleted.text
    assert await list_triggers(api, user) == []
    for secret in (first["secret"], second["secret"]):
        gone = await deliver(api, source, secret, issue("old maps"), new_delivery_id())
        assert_error(gone, 401, "invalid_signature")
    again = await api.delete(f"/api/v1/webhook-triggers/{first['trigger_id']}", headers=user.headers)
    assert_error(again, 404, "webhook_trigger_not_found")
    assert await count_runs(database, user.billing_account_id) == rows

    still = await api.get(f"/api/v1/runs/{run['run_id']}", headers=user.headers)
    assert still.status_code == 200, still.text
    assert still.json()["status"] == "success"
    assert still.json()["trigger_ref"] == delivery_id
    assert still.json()["run_kind"] == "system_webhook"
