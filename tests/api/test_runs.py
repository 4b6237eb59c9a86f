"""POST /graphs/{graph_id}/runs and the run reads: idempotency, validation, auth, tenancy."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client
from temporalio.service import RPCError

from db.session import Database
from runledger.contracts import ids
from tests.db.queries import count_runs, scalar
from tests.helpers import Tenant, create_user, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")


async def test_IDEMPOTENT_RUN_START_same_key_same_body_same_run(api: httpx.AsyncClient, user: Tenant) -> None:
    first = await start_run(api, user, key="order-1")
    second = await start_run(api, user, key="order-1")
    assert first.status_code == 202, first.text
    assert second.status_code == 200, second.text
    assert first.json()["run_id"] == second.json()["run_id"]
    assert first.json()["run_id"] == ids.api_run_id(
        billing_account_id=user.billing_account_id, graph_id="langgraph:poet", idempotency_key="order-1"
    )
    assert first.json()["workflow_id"] == f"graph-run:{first.json()['run_id']}"
    run = await wait_for_run(api, user, first.json()["run_id"])
    # After the run finished the key still answers with the same run: idempotency is permanent.
    third = await start_run(api, user, key="order-1")
    assert third.status_code == 200
    assert third.json()["run_id"] == run["run_id"]
    assert third.json()["status"] == run["status"]


async def test_IDEMPOTENT_RUN_START_same_key_other_body_is_422(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    assert (await start_run(api, user, key="k")).status_code == 202
    other = await start_run(api, user, key="k", payload={"input": {"topic": "another topic"}})
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert await count_runs(database, user.billing_account_id) == 1


async def test_IDEMPOTENT_RUN_START_twenty_concurrent_starts_make_one_run(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    responses = await asyncio.gather(*(start_run(api, user, key="burst") for _ in range(20)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * 19 + [202], [r.text for r in responses if r.status_code not in (200, 202)]
    assert len({r.json()["run_id"] for r in responses}) == 1
    assert await count_runs(database, user.billing_account_id) == 1
    run = await wait_for_run(api, user, responses[0].json()["run_id"])
    assert run["status"] == "success"
    assert run["model_calls"] == 1


async def test_run_without_key_gets_fresh_ids(api: httpx.AsyncClient, user: Tenant) -> None:
    a, b = await start_run(api, user), await start_run(api, user)
    assert a.status_code == b.status_code == 202
    assert a.json()["run_id"] != b.json()["run_id"]


async def test_client_sent_run_id_is_refused(api: httpx.AsyncClient, user: Tenant) -> None:
    resp = await start_run(api, user, payload={"input": {"topic": "x"}, "run_id": "mine"})
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "validation_error"


async def test_insufficient_credits_is_402_and_nothing_is_started(
    api: httpx.AsyncClient, database: Database, client: Client
) -> None:
    poor = await create_user(api, credits=100)
    resp = await start_run(api, poor, key="poor-1")
    assert resp.status_code == 402
    assert resp.json()["error"]["code"] == "insufficient_credits"
    assert await count_runs(database, poor.billing_account_id) == 0
    assert (
        await scalar(
            database,
            "SELECT count(*) FROM run_start_requests WHERE billing_account_id = :a",
            a=poor.billing_account_id,
        )
        == 0
    )
    run_id = ids.api_run_id(
        billing_account_id=poor.billing_account_id, graph_id="langgraph:poet", idempotency_key="poor-1"
    )
    with pytest.raises(RPCError, match="not found"):
        await client.get_workflow_handle(ids.graph_run_workflow_id(run_id)).describe()
    me = await api.get("/api/v1/me", headers=poor.headers)
    assert me.json()["balance_credits"] == 100


async def test_a_graph_whose_model_has_no_published_price_is_503_and_nothing_is_started(
    api: httpx.AsyncClient, database: Database, user: Tenant
) -> None:
    """The start reads the graph and its model's price in one statement; a model no worker priced
    yet is 503 ``model_not_priced`` (the client may retry), with no run, claim or hold written."""
    graph_id = f"test:unpriced-{uuid.uuid4().hex[:8]}"
    async with database.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO graph_versions (graph_id, version, source, description, input_schema,"
                " tool_ids, write_tools, approval_tools, max_model_calls, model)"
                " VALUES (:g, 'v1', 'test', 'a graph on a model nobody priced', CAST(:schema AS jsonb),"
                " '{}', '{}', '{}', 1, 'nobody-priced-this-model')"
            ),
            {"g": graph_id, "schema": json.dumps({"type": "object"})},
        )
        await session.execute(
            text("INSERT INTO graph_catalog (graph_id, version) VALUES (:g, 'v1')"), {"g": graph_id}
        )
    try:
        before = await count_runs(database, user.billing_account_id)
        resp = await start_run(api, user, graph_id=graph_id, payload={"input": {}}, key="unpriced-1")
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"]["code"] == "model_not_priced"
        assert "nobody-priced-this-model" in resp.json()["error"]["message"]
        assert await count_runs(database, user.billing_account_id) == before
        assert (
            await scalar(database, "SELECT count(*) FROM run_start_requests WHERE graph_id = :g", g=graph_id)
            == 0
        )
    finally:
        async with database.transaction() as session:
            # Out of the current catalog again (versions are kept for good: append-only).
            await session.execute(text("DELETE FROM graph_catalog WHERE graph_id = :g"), {"g": graph_id})


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"input": {}}, "topic"),
        ({"input": {"topic": ""}}, "topic"),
        ({"input": {"topic": "x", "extra": 1}}, "extra"),
        ({"input": "not an object"}, "input"),
        ({}, "input"),
    ],
)
async def test_bad_input_is_422_with_envelope(
    api: httpx.AsyncClient, user: Tenant, database: Database, payload: dict[str, object], fragment: str
) -> None:
    resp = await start_run(api, user, payload=payload)
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "validation_error"
    assert fragment in error["message"]
    assert await count_runs(database, user.billing_account_id) == 0


async def test_malformed_json_is_422_with_envelope(api: httpx.AsyncClient, user: Tenant) -> None:
    resp = await api.post(
        "/api/v1/graphs/langgraph:poet/runs",
        content=b"{not json",
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "validation_error"


async def test_unknown_graph_is_404(api: httpx.AsyncClient, user: Tenant) -> None:
    resp = await start_run(api, user, graph_id="langgraph:nope")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "graph_not_found"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/graphs"),
        ("GET", "/api/v1/runs"),
        ("POST", "/api/v1/graphs/langgraph:poet/runs"),
        ("GET", "/api/v1/billing/ledger"),
        ("GET", "/api/v1/billing/receipts"),
    ],
)
@pytest.mark.parametrize("auth", [None, "Bearer rl_not-a-real-key", "Basic abc"])
async def test_401_without_a_valid_key(
    api: httpx.AsyncClient, method: str, path: str, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth else {}
    resp = await api.request(method, path, headers=headers, json={"input": {"topic": "x"}})
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthorized"


async def test_other_tenants_run_is_404(api: httpx.AsyncClient, user: Tenant) -> None:
    resp = await start_run(api, user)
    run_id = resp.json()["run_id"]
    other = await create_user(api, credits=1_000_000, name="other")
    for path in (f"/api/v1/runs/{run_id}", f"/api/v1/runs/{run_id}/charges"):
        answer = await api.get(path, headers=other.headers)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "run_not_found"
    cancel = await api.post(f"/api/v1/runs/{run_id}/cancel", headers=other.headers)
    assert cancel.status_code == 404
    listed = await api.get("/api/v1/runs", headers=other.headers)
    assert listed.json()["runs"] == []
    # A path id that is no canonical UUID is refused by the boundary (422), before any lookup.
    assert (await api.get("/api/v1/runs/not-a-uuid", headers=user.headers)).status_code == 422


async def test_run_detail_and_list_with_filters_and_cursor(api: httpx.AsyncClient, user: Tenant) -> None:
    started = [(await start_run(api, user, key=f"list-{i}")).json()["run_id"] for i in range(3)]
    brief = await start_run(api, user, graph_id="langgraph:brief", key="list-brief")
    for run_id in [*started, brief.json()["run_id"]]:
        await wait_for_run(api, user, run_id)

    detail = (await api.get(f"/api/v1/runs/{started[0]}", headers=user.headers)).json()
    assert detail["run_kind"] == "user_immediate"
    assert detail["trigger_source"] == "api"
    assert detail["trigger_ref"] == "list-0"
    assert detail["requested_by"] == user.user_id
    assert detail["trace_id"] == ids.langfuse_trace_id(started[0])
    assert detail["links"]["temporal_ui"].endswith(f"/workflows/graph-run%3A{started[0]}")
    assert detail["started_at"] is not None
    assert detail["completed_at"] >= detail["started_at"]

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2, "graph_id": "langgraph:poet"}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/api/v1/runs", params=params, headers=user.headers)).json()
        seen += [r["run_id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(started))  # newest first, no duplicates, nothing missing

    only_brief = (
        await api.get("/api/v1/runs", params={"graph_id": "langgraph:brief"}, headers=user.headers)
    ).json()
    assert [r["run_id"] for r in only_brief["runs"]] == [brief.json()["run_id"]]
    success = (await api.get("/api/v1/runs", params={"status": "success"}, headers=user.headers)).json()
    assert len(success["runs"]) == 4
    for bad in ({"status": "nope"}, {"limit": 0}, {"limit": 101}, {"cursor": "%%%"}, {"created_after": "x"}):
        resp = await api.get("/api/v1/runs", params=bad, headers=user.headers)
        assert resp.status_code == 422, bad
        assert resp.json()["error"]["code"] in ("validation_error", "invalid_cursor")


async def test_graph_catalog(api: httpx.AsyncClient, user: Tenant) -> None:
    graphs = (await api.get("/api/v1/graphs", headers=user.headers)).json()
    by_id = {g["graph_id"]: g for g in graphs}
    assert set(by_id) == {
        "langgraph:poet",
        "langgraph:brief",
        "langgraph:chat",
        "langgraph:dated_note",
        "langgraph:agent",
        "langgraph:careful_agent",
    }
    assert by_id["langgraph:poet"]["input_schema"]["required"] == ["topic"]
    assert by_id["langgraph:poet"]["tool_ids"] == []
    assert by_id["langgraph:dated_note"]["tool_ids"] == ["core__current_time"]


async def test_replay_starts_a_new_billed_run_linked_to_the_original(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    original = await wait_for_run(api, user, (await start_run(api, user, key="to-replay")).json()["run_id"])
    resp = await api.post(f"/api/v1/runs/{original['run_id']}/replay", headers=user.headers)
    assert resp.status_code == 202, resp.text
    replay = await wait_for_run(api, user, resp.json()["run_id"])
    assert replay["run_id"] != original["run_id"]
    assert replay["replay_of"] == original["run_id"]
    assert replay["run_kind"] == "replay"
    assert replay["input"] == original["input"]
    assert replay["status"] == "success"
    charges = (await api.get(f"/api/v1/runs/{replay['run_id']}/charges", headers=user.headers)).json()
    assert len(charges["receipts"]) == 1
    other = await create_user(api, credits=1_000_000, name="other")
    assert (
        await api.post(f"/api/v1/runs/{original['run_id']}/replay", headers=other.headers)
    ).status_code == 404
