"""Run events over SSE: text deltas, live cost, exactly one terminal event, exact resumption."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from tests.fakes.openai_server import FakeProvider
from tests.helpers import Tenant, create_user, parse_sse, read_events, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")


async def test_stream_has_deltas_usage_per_call_and_one_done(api: httpx.AsyncClient, user: Tenant) -> None:
    started = await start_run(api, user, graph_id="langgraph:brief")
    run = await wait_for_run(api, user, started.json()["run_id"])
    events = await read_events(api, user, run["run_id"])
    assert [e.id for e in events] == list(range(1, len(events) + 1))  # ordered, gap-free
    names = [e.event for e in events]
    assert names.count("done") == 1
    assert names[-1] == "done"
    assert "error" not in names
    assert [e.data["status"] for e in events if e.event == "status"] == ["pending", "running", "success"]
    usage = [e.data for e in events if e.event == "usage"]
    assert len(usage) == 3 == run["model_calls"]
    assert sum(u["credits"] for u in usage) == run["cost_credits"]
    assert (
        usage[-1]["balance_after"]
        == (await api.get("/api/v1/me", headers=user.headers)).json()["balance_credits"]
    )
    for key, call_key in (("outline", "outline:1.0"), ("draft", "draft:2.0"), ("review", "review:3.0")):
        text = "".join(
            e.data["text"] for e in events if e.event == "text_delta" and e.data["call_key"] == call_key
        )
        assert text == run["output"][key]
    assert events[-1].data["output"] == run["output"]


async def test_resume_after_a_middle_id_returns_exactly_the_rest(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    run = await wait_for_run(
        api, user, (await start_run(api, user, graph_id="langgraph:brief")).json()["run_id"]
    )
    everything = await read_events(api, user, run["run_id"])
    middle = everything[len(everything) // 2].id
    rest = await read_events(api, user, run["run_id"], last_event_id=middle)
    assert rest == everything[middle:]
    assert await read_events(api, user, run["run_id"], last_event_id=everything[-1].id) == []


async def test_live_stream_delivers_events_as_they_happen(
    api_url: str, api: httpx.AsyncClient, user: Tenant, fake_provider: FakeProvider
) -> None:
    gate = threading.Event()
    fake_provider.log.gate = gate
    try:
        run_id = (await start_run(api, user)).json()["run_id"]
        seen: list[str] = []
        async with (
            httpx.AsyncClient(base_url=api_url, timeout=30) as http,
            http.stream("GET", f"/api/v1/runs/{run_id}/events", headers=user.headers) as resp,
        ):
            lines: list[str] = []
            async for line in resp.aiter_lines():
                lines.append(line)
                seen = [e.event for e in parse_sse(lines)]
                if seen == ["status", "status"] and not gate.is_set():
                    # pending, running: the model call is held at the provider, the run is live.
                    run = (await api.get(f"/api/v1/runs/{run_id}", headers=user.headers)).json()
                    assert run["status"] == "running"
                    gate.set()
            events = parse_sse(lines)
    finally:
        fake_provider.log.gate = None
        gate.set()
    assert [e.event for e in events][:2] == ["status", "status"]
    assert events[-1].event == "done"
    assert "text_delta" in [e.event for e in events]


async def test_skipped_and_failed_runs_end_with_one_error_event(api: httpx.AsyncClient, user: Tenant) -> None:
    run_id = (await start_run(api, user)).json()["run_id"]
    await api.post(f"/api/v1/runs/{run_id}/cancel", headers=user.headers)
    run = await wait_for_run(api, user, run_id)
    events = await read_events(api, user, run_id)
    terminal = [e for e in events if e.event in ("done", "error")]
    assert len(terminal) == 1
    assert terminal[0].event == ("done" if run["status"] == "success" else "error")


async def test_events_auth_and_tenancy(api: httpx.AsyncClient, user: Tenant) -> None:
    run_id = (await start_run(api, user)).json()["run_id"]
    assert (await api.get(f"/api/v1/runs/{run_id}/events")).status_code == 401
    other = await create_user(api, name="other")
    resp = await api.get(f"/api/v1/runs/{run_id}/events", headers=other.headers)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "run_not_found"
    bad = await api.get(f"/api/v1/runs/{run_id}/events", headers={**user.headers, "Last-Event-ID": "x"})
    assert bad.status_code == 422
    await wait_for_run(api, user, run_id)


async def test_many_listeners_share_one_notification_connection(
    api_url: str, api: httpx.AsyncClient, user: Tenant
) -> None:
    run_id = (await start_run(api, user, graph_id="langgraph:brief")).json()["run_id"]

    async def listen() -> int:
        async with (
            httpx.AsyncClient(base_url=api_url, timeout=30) as http,
            http.stream("GET", f"/api/v1/runs/{run_id}/events", headers=user.headers) as resp,
        ):
            return len(parse_sse([line async for line in resp.aiter_lines()]))

    counts = await asyncio.gather(*(listen() for _ in range(20)))
    assert len(set(counts)) == 1
    assert counts[0] > 5
