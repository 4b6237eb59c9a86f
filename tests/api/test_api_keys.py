"""API keys (issue 12 item 8): ``POST /api/v1/me/api-keys`` shows a new key once, ``GET`` never shows
a key, ``DELETE /api/v1/me/api-keys/{id}`` revokes it for the next request; an admin lists and
revokes a user's keys; ``runledger keys create|list|revoke`` does the same through the API."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from db.session import Database
from tests.db.queries import scalar
from tests.helpers import ADMIN, Tenant, create_user
from tests.test_cli_commands import Cli

KEY_FIELDS = {"key_id", "name", "key_prefix", "created_at", "revoked_at"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_new_key_is_shown_once_works_and_is_listed_without_the_key(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    created = await api.post("/api/v1/me/api-keys", json={"name": "ci"}, headers=user.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == KEY_FIELDS | {"api_key"}
    assert body["api_key"].startswith(body["key_prefix"])
    assert body["name"] == "ci"
    assert body["revoked_at"] is None
    # Only a hash is stored.
    stored = await scalar(database, "SELECT count(*) FROM api_keys WHERE key_hash = :k", k=body["api_key"])
    assert stored == 0
    me = await api.get("/api/v1/me", headers=bearer(body["api_key"]))
    assert me.status_code == 200
    assert me.json()["user_id"] == user.user_id
    listed = (await api.get("/api/v1/me/api-keys", headers=user.headers)).json()["api_keys"]
    assert len(listed) == 2  # the user's first key and this one
    for key in listed:
        assert set(key) == KEY_FIELDS
    assert body["api_key"] not in str(listed)
    assert user.api_key not in str(listed)
    # A key without a name is fine too.
    assert (await api.post("/api/v1/me/api-keys", headers=user.headers)).status_code == 201


async def test_a_revoked_key_is_refused_on_the_next_request(api: httpx.AsyncClient, user: Tenant) -> None:
    second = (await api.post("/api/v1/me/api-keys", json={}, headers=user.headers)).json()
    revoke = await api.delete(f"/api/v1/me/api-keys/{second['key_id']}", headers=user.headers)
    assert revoke.status_code == 204
    refused = await api.get("/api/v1/me", headers=bearer(second["api_key"]))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    # The other key still works; the revoked one is listed with its revocation time.
    assert (await api.get("/api/v1/me", headers=user.headers)).status_code == 200
    listed = {
        k["key_id"]: k
        for k in (await api.get("/api/v1/me/api-keys", headers=user.headers)).json()["api_keys"]
    }
    first_revoked_at = listed[second["key_id"]]["revoked_at"]
    assert first_revoked_at is not None
    # Revoking again changes nothing; the key in use can revoke itself.
    assert (
        await api.delete(f"/api/v1/me/api-keys/{second['key_id']}", headers=user.headers)
    ).status_code == 204
    listed = {
        k["key_id"]: k
        for k in (await api.get("/api/v1/me/api-keys", headers=user.headers)).json()["api_keys"]
    }
    assert listed[second["key_id"]]["revoked_at"] == first_revoked_at
    own = next(k for k in listed.values() if k["revoked_at"] is None)
    assert (await api.delete(f"/api/v1/me/api-keys/{own['key_id']}", headers=user.headers)).status_code == 204
    assert (await api.get("/api/v1/me", headers=user.headers)).status_code == 401


async def test_another_users_key_is_404_and_stays_valid(api: httpx.AsyncClient, user: Tenant) -> None:
    other = await create_user(api, name="other")
    theirs = (await api.get("/api/v1/me/api-keys", headers=other.headers)).json()["api_keys"][0]
    for key_id in (theirs["key_id"], str(uuid.uuid4())):
        resp = await api.delete(f"/api/v1/me/api-keys/{key_id}", headers=user.headers)
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "api_key_not_found"
    assert (await api.get("/api/v1/me", headers=other.headers)).status_code == 200


async def test_admin_lists_and_revokes_a_users_keys(api: httpx.AsyncClient, user: Tenant) -> None:
    extra = (await api.post("/api/v1/me/api-keys", json={"name": "x"}, headers=user.headers)).json()
    base = f"/api/v1/admin/users/{user.user_id}/api-keys"
    listed = await api.get(base, headers=ADMIN)
    assert listed.status_code == 200
    assert {k["key_id"] for k in listed.json()["api_keys"]} >= {extra["key_id"]}
    assert extra["api_key"] not in listed.text
    # Users cannot use the admin routes; unknown users are 404.
    assert (await api.get(base, headers=user.headers)).status_code == 403
    assert (await api.get(f"/api/v1/admin/users/{uuid.uuid4()}/api-keys", headers=ADMIN)).status_code == 404
    one = await api.delete(f"{base}/{extra['key_id']}", headers=ADMIN)
    assert one.status_code == 204
    assert (await api.get("/api/v1/me", headers=bearer(extra["api_key"]))).status_code == 401
    assert (await api.get("/api/v1/me", headers=user.headers)).status_code == 200
    everything = await api.delete(base, headers=ADMIN)
    assert everything.status_code == 204
    assert (await api.get("/api/v1/me", headers=user.headers)).status_code == 401


async def test_keys_through_the_cli(api: httpx.AsyncClient, api_url: str, tmp_path: Path) -> None:
    user = await create_user(api)
    cli = Cli(api_url, user, tmp_path)
    created = (await cli.ok("keys", "create", "--name", "laptop", "--json")).json()
    assert created["name"] == "laptop"
    assert (await api.get("/api/v1/me", headers=bearer(created["api_key"]))).status_code == 200
    table = (await cli.ok("keys", "list")).out
    assert created["key_id"] in table
    assert "laptop" in table
    assert created["api_key"] not in table
    listed = (await cli.ok("keys", "list", "--json")).json()["api_keys"]
    assert {k["key_id"] for k in listed} >= {created["key_id"]}
    human = await cli.ok("keys", "create")
    assert "only time the key is shown" in human.out
    revoked = (await cli.ok("keys", "revoke", created["key_id"], "--json")).json()
    assert revoked == {"key_id": created["key_id"], "revoked": True}
    assert (await api.get("/api/v1/me", headers=bearer(created["api_key"]))).status_code == 401
    missing = await cli("keys", "revoke", str(uuid.uuid4()))
    assert missing.code != 0
    assert "api_key_not_found" in missing.err
