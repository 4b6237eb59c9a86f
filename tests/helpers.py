"""Test helpers: API-level factories and polling with a deadline (no fixed sleeps)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: The test session's RUNLEDGER_SECRET_KEYS (two Fernet keys, newest first: rotation is exercised).
SECRET_KEYS = "u9dCwSLp7mzUsBLS8vw-gB3VfWVFyVDU2aIUWXXr5M4=,0SPb4iwnPDKwfz64dPALhLDlczXaXN_s1U0SC9RaTQ0="
T = TypeVar("T")


@dataclass(frozen=True)
class Tenant:
    user_id: str
    billing_account_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def create_user(api: httpx.AsyncClient, *, credits: int = 0, name: str = "tester") -> Tenant:
    resp = await api.post("/api/v1/admin/users", json={"name": name}, headers=ADMIN)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    created = Tenant(body["user_id"], body["billing_account_id"], body["api_key"])
    if credits:
        await top_up(api, created.billing_account_id, credits)
    return created


async def top_up(
    api: httpx.AsyncClient, account_id: str, credits: int, reference: str | None = None
) -> httpx.Response:
    resp = await api.post(
        f"/api/v1/admin/billing-accounts/{account_id}/credits",
        json={"amount_credits": credits, "reference": reference or f"test-{uuid.uuid4()}"},
        headers=ADMIN,
    )
    assert resp.status_code in (200, 201), resp.text
    return resp


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], bool],
    within: float = 30.0,
    interval: float = 0.05,
) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s; last value: {value!r}")
        await asyncio.sleep(interval)


TERMINAL = {"success", "error", "cancelled", "skipped"}


async def wait_for_run(
    api: httpx.AsyncClient, user: Tenant, run_id: str, within: float = 30.0
) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        resp = await api.get(f"/api/v1/runs/{run_id}", headers=user.headers)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    return await eventually(probe, until=lambda run: run["status"] in TERMINAL, within=within)


async def start_run(
    api: httpx.AsyncClient,
    user: Tenant,
    graph_id: str = "langgraph:poet",
    payload: dict[str, Any] | None = None,
    key: str | None = None,
) -> httpx.Response:
    headers = dict(user.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await api.post(
        f"/api/v1/graphs/{graph_id}/runs",
        json=payload if payload is not None else {"input": {"topic": "the sea"}},
        headers=headers,
    )


@dataclass(frozen=True)
class SseEvent:
    id: int
    event: str
    data: dict[str, Any]


def parse_sse(lines: list[str]) -> list[SseEvent]:
    """Parse SSE text into events (comments, i.e. pings, are skipped)."""
    import json

    found: list[SseEvent] = []
    fields: dict[str, str] = {}
    for line in [*lines, ""]:
        if not line.strip():
            if "data" in fields:
                found.append(
                    SseEvent(
                        int(fields.get("id", "0")), fields.get("event", "message"), json.loads(fields["data"])
                    )
                )
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value
    return found


async def read_events(
    http: httpx.AsyncClient, user: Tenant, run_id: str, last_event_id: int | None = None
) -> list[SseEvent]:
    headers = dict(user.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    async with http.stream("GET", f"/api/v1/runs/{run_id}/events", headers=headers) as resp:
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"].startswith("text/event-stream")
        return parse_sse([line async for line in resp.aiter_lines()])
