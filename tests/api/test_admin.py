"""Admin endpoints: users with a key shown once, idempotent top-ups."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from api.keys import hash_api_key
from db.session import Database
from tests.db.queries import scalar
from tests.helpers import ADMIN, create_user


async def test_create_user_returns_key_once_and_stores_only_its_hash(
    api: httpx.AsyncClient, database: Database
) -> None:
    resp = await api.post("/api/v1/admin/users", json={"name": "ada"}, headers=ADMIN)
    assert resp.status_code == 201
    body = resp.json()
    assert set(body) == {"user_id", "billing_account_id", "api_key"}
    stored = await scalar(database, "SELECT key_hash FROM api_keys WHERE user_id = :u", u=body["user_id"])
    assert stored == hash_api_key(body["api_key"])
    assert body["api_key"] not in stored
    me = await api.get("/api/v1/me", headers={"Authorization": f"Bearer {body['api_key']}"})
    assert me.json() == {
        "user_id": body["user_id"],
        "billing_account_id": body["billing_account_id"],
        "balance_credits": 0,
        "reserved_credits": 0,
        "available_credits": 0,
    }


async def test_admin_endpoints_need_the_admin_token(api: httpx.AsyncClient) -> None:
    user = await create_user(api)
    assert (await api.post("/api/v1/admin/users", json={"name": "x"})).status_code == 401
    forbidden = await api.post("/api/v1/admin/users", json={"name": "x"}, headers=user.headers)
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"
    # ... and the admin token is not a user key.
    assert (await api.get("/api/v1/me", headers=ADMIN)).status_code == 401


async def test_create_user_validates(api: httpx.AsyncClient) -> None:
    for body in ({}, {"name": ""}, {"name": "x", "role": "admin"}):
        resp = await api.post("/api/v1/admin/users", json=body, headers=ADMIN)
        assert resp.status_code == 422
        assert resp.json()["error"]["code"] == "validation_error"


async def test_topup_is_idempotent_by_reference(api: httpx.AsyncClient, database: Database) -> None:
    user = await create_user(api)
    url = f"/api/v1/admin/billing-accounts/{user.billing_account_id}/credits"
    first = await api.post(url, json={"amount_credits": 500, "reference": "inv-1"}, headers=ADMIN)
    again = await api.post(url, json={"amount_credits": 500, "reference": "inv-1"}, headers=ADMIN)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["balance_after"] == 500
    conflict = await api.post(url, json={"amount_credits": 501, "reference": "inv-1"}, headers=ADMIN)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "topup_reference_conflict"
    me = await api.get("/api/v1/me", headers=user.headers)
    assert me.json()["balance_credits"] == 500


async def test_concurrent_same_reference_topups_credit_once(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api)
    url = f"/api/v1/admin/billing-accounts/{user.billing_account_id}/credits"
    responses = await asyncio.gather(
        *(api.post(url, json={"amount_credits": 700, "reference": "race"}, headers=ADMIN) for _ in range(10))
    )
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert (await api.get("/api/v1/me", headers=user.headers)).json()["balance_credits"] == 700
    entries = await scalar(
        database,
        "SELECT count(*) FROM credit_ledger WHERE billing_account_id = :a",
        a=user.billing_account_id,
    )
    assert entries == 1


async def test_topup_bad_input_changes_nothing(api: httpx.AsyncClient) -> None:
    user = await create_user(api)
    url = f"/api/v1/admin/billing-accounts/{user.billing_account_id}/credits"
    for body in (
        {"amount_credits": 0, "reference": "a"},
        {"amount_credits": -5, "reference": "a"},
        {"amount_credits": 1.5, "reference": "a"},
        {"amount_credits": 5},
        {"amount_credits": 5, "reference": ""},
    ):
        resp = await api.post(url, json=body, headers=ADMIN)
        assert resp.status_code == 422, body
    missing = await api.post(
        f"/api/v1/admin/billing-accounts/{uuid.uuid4()}/credits",
        json={"amount_credits": 5, "reference": "a"},
        headers=ADMIN,
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "billing_account_not_found"
    bad_id = await api.post(
        "/api/v1/admin/billing-accounts/not-a-uuid/credits",
        json={"amount_credits": 5, "reference": "a"},
        headers=ADMIN,
    )
    assert bad_id.status_code == 422
    assert (await api.get("/api/v1/me", headers=user.headers)).json()["balance_credits"] == 0


async def test_unknown_route_and_method_use_the_envelope(api: httpx.AsyncClient) -> None:
    missing = await api.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = await api.delete("/api/v1/me")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


async def test_health(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "temporal": "ok"}
