"""Another tenant's object is answered 404, never 403 (SPEC §4: existence is not revealed): every
id-bearing route of the API, walked with another tenant's real ids (a finished run, a grant, a
schedule, a webhook trigger, an API key). Nothing of the owner's changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import Tenant, create_user, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")

POET = "langgraph:poet"


async def _created(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code in (200, 201, 202), resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_every_id_bearing_route_answers_another_tenants_ids_with_404(api: httpx.AsyncClient) -> None:
    owner = await create_user(api, credits=5_000_000, name="owner")
    intruder = await create_user(api, credits=5_000_000, name="intruder")
    run_id = (await _created(await start_run(api, owner)))["run_id"]
    assert (await wait_for_run(api, owner, run_id))["status"] == "success"
    grant = await _created(
        await api.post("/api/v1/grants", json={"scopes": [f"graph:execute:{POET}"]}, headers=owner.headers)
    )
    schedule = await _created(
        await api.post(
            "/api/v1/schedules",
            json={"graph_id": POET, "input": {"topic": "x"}, "cron": "0 9 * * *", "timezone": "UTC"},
            headers=owner.headers,
        )
    )
    trigger = await _created(
        await api.post(
            "/api/v1/webhook-triggers",
            json={"source": f"xt-{run_id[:8]}", "graph_id": POET, "input": {"topic": "x"}},
            headers=owner.headers,
        )
    )
    key = await _created(
        await api.post("/api/v1/me/api-keys", json={"name": "owner's"}, headers=owner.headers)
    )
    before = await _owner_view(api, owner, run_id, schedule["schedule_id"])

    sid, gid, tid = schedule["schedule_id"], grant["grant_id"], trigger["trigger_id"]
    walk: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/api/v1/runs/{run_id}", None),
        ("GET", f"/api/v1/runs/{run_id}/charges", None),
        ("GET", f"/api/v1/runs/{run_id}/events", None),
        ("GET", f"/api/v1/runs/{run_id}/ui-stream", None),
        ("POST", f"/api/v1/runs/{run_id}/cancel", None),
        ("POST", f"/api/v1/runs/{run_id}/replay", None),
        ("DELETE", f"/api/v1/grants/{gid}", None),
        ("GET", f"/api/v1/schedules/{sid}", None),
        ("PATCH", f"/api/v1/schedules/{sid}", {"cron": "0 1 * * *"}),
        ("POST", f"/api/v1/schedules/{sid}/trigger", None),
        ("DELETE", f"/api/v1/schedules/{sid}", None),
        ("GET", f"/api/v1/webhook-triggers/{tid}", None),
        ("DELETE", f"/api/v1/webhook-triggers/{tid}", None),
        ("DELETE", f"/api/v1/me/api-keys/{key['key_id']}", None),
        # Ids inside bodies: another tenant's grant cannot be borrowed.
        (
            "POST",
            "/api/v1/schedules",
            {
                "graph_id": POET,
                "input": {"topic": "x"},
                "cron": "0 9 * * *",
                "timezone": "UTC",
                "grant_id": gid,
            },
        ),
        (
            "POST",
            "/api/v1/webhook-triggers",
            {"source": "xt-borrow", "graph_id": POET, "input": {"topic": "x"}, "grant_id": gid},
        ),
    ]
    for method, path, body in walk:
        resp = await api.request(method, path, json=body, headers=intruder.headers)
        assert resp.status_code == 404, (method, path, resp.status_code, resp.text)
        assert set(resp.json()) == {"error"}
        assert resp.json()["error"]["code"].endswith("not_found"), resp.text
    # Filters by another tenant's ids find nothing (a list, not an error).
    for path, params in (
        ("/api/v1/runs", {"schedule_id": sid}),
        ("/api/v1/billing/ledger", {"run_id": run_id}),
        ("/api/v1/billing/receipts", {"run_id": run_id}),
    ):
        resp = await api.get(path, params=params, headers=intruder.headers)
        assert resp.status_code == 200, resp.text
        assert next(iter(v for k, v in resp.json().items() if isinstance(v, list))) == [], (path, resp.text)

    assert await _owner_view(api, owner, run_id, schedule["schedule_id"]) == before
    assert (
        await api.get("/api/v1/me", headers={"Authorization": f"Bearer {key['api_key']}"})
    ).status_code == 200


async def _owner_view(api: httpx.AsyncClient, owner: Tenant, run_id: str, schedule_id: str) -> list[Any]:
    """What the owner sees of their objects (ignoring Temporal's moving next-run times)."""
    schedule = (await api.get(f"/api/v1/schedules/{schedule_id}", headers=owner.headers)).json()
    return [
        (await api.get(f"/api/v1/runs/{run_id}", headers=owner.headers)).json()["status"],
        (await api.get("/api/v1/runs", headers=owner.headers)).json()["runs"],
        (await api.get("/api/v1/grants", headers=owner.headers)).json(),
        {k: schedule[k] for k in ("cron", "enabled", "paused", "input", "updated_at")},
        (await api.get("/api/v1/webhook-triggers", headers=owner.headers)).json(),
        [
            k["revoked_at"]
            for k in (await api.get("/api/v1/me/api-keys", headers=owner.headers)).json()["api_keys"]
        ],
        (await api.get("/api/v1/me", headers=owner.headers)).json()["balance_credits"],
    ]
