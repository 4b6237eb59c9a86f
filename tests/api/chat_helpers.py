"""Helpers of the chat front-end tests: a conversation, a run cancelled while its model call is held
at the provider, and the balance/receipts a chat run leaves."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.fakes.openai_server import FakeProvider
from tests.helpers import Tenant, eventually

CONVERSATION = [
    {"role": "system", "content": "You answer in one sentence."},
    {"role": "user", "content": "Name a lighthouse."},
    {"role": "assistant", "content": "The Tower of Hercules."},
    {"role": "user", "content": "Where is it?"},
]


async def balance(api: httpx.AsyncClient, user: Tenant) -> int:
    resp = await api.get("/api/v1/me", headers=user.headers)
    assert resp.status_code == 200, resp.text
    value: int = resp.json()["balance_credits"]
    return value


async def run_detail(api: httpx.AsyncClient, user: Tenant, run_id: str) -> dict[str, Any]:
    resp = await api.get(f"/api/v1/runs/{run_id}", headers=user.headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def receipts_of(api: httpx.AsyncClient, user: Tenant, run_id: str) -> list[dict[str, Any]]:
    resp = await api.get("/api/v1/billing/receipts", params={"run_id": run_id}, headers=user.headers)
    assert resp.status_code == 200, resp.text
    receipts: list[dict[str, Any]] = resp.json()["receipts"]
    assert {r["run_id"] for r in receipts} <= {run_id}
    return receipts


@asynccontextmanager
async def held_model_calls(fake_provider: FakeProvider) -> AsyncIterator[threading.Event]:
    """Model calls wait at the provider until the yielded gate is set (it is set on exit)."""
    gate = threading.Event()
    fake_provider.log.gate = gate
    try:
        yield gate
    finally:
        fake_provider.log.gate = None
        gate.set()


async def cancel_the_held_run(
    api: httpx.AsyncClient, user: Tenant, fake_provider: FakeProvider
) -> dict[str, Any]:
    """Find the caller's only running run (its model call held at the provider), cancel it and wait
    until it has ended (``cancelled``, or ``error`` when the cancellation reached the graph mid-call);
    returns the finished run."""

    async def running() -> list[dict[str, Any]]:
        resp = await api.get("/api/v1/runs", params={"status": "running"}, headers=user.headers)
        runs: list[dict[str, Any]] = resp.json()["runs"]
        return runs

    found = await eventually(running, until=lambda runs: len(runs) == 1 and fake_provider.log.waiting > 0)
    run_id: str = found[0]["run_id"]
    resp = await api.post(f"/api/v1/runs/{run_id}/cancel", headers=user.headers)
    assert resp.status_code == 202, resp.text
    return await eventually(
        lambda: run_detail(api, user, run_id),
        until=lambda run: run["status"] in ("cancelled", "error"),
        within=30,
    )
