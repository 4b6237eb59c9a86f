"""Runs as AI SDK UI message streams (protocol v1): the chat route a ``useChat`` / assistant-ui front
end posts to, and the stream of any run."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from api.event_stream import RunEventView
from api.routes.ui_stream import UIMessageStream
from db.models import GraphRun
from tests.api.chat_helpers import (
    balance,
    cancel_the_held_run,
    held_model_calls,
    receipts_of,
    run_detail,
)
from tests.fakes.openai_server import FakeProvider
from tests.helpers import Tenant, create_user, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")

#: The fields the AI SDK's strict chunk schemas allow, per part type (``data-*`` parts share one).
ALLOWED_FIELDS = {
    "start": {"type", "messageId", "messageMetadata"},
    "start-step": {"type"},
    "text-start": {"type", "id", "providerMetadata"},
    "text-delta": {"type", "id", "delta", "providerMetadata"},
    "text-end": {"type", "id", "providerMetadata"},
    "finish-step": {"type"},
    "finish": {"type", "finishReason", "messageMetadata"},
    "error": {"type", "errorText"},
    "tool-input-available": {"type", "toolCallId", "toolName", "input", "providerExecuted", "dynamic"},
    "tool-output-available": {"type", "toolCallId", "output", "providerExecuted", "dynamic", "preliminary"},
    "tool-output-error": {"type", "toolCallId", "errorText", "providerExecuted", "dynamic"},
    "data-*": {"type", "id", "data", "transient"},
}

#: What ``useChat``'s default transport posts (AI SDK 5): chat id, UI messages with parts, trigger.
USE_CHAT_BODY = {
    "id": "chat-1",
    "trigger": "submit-message",
    "messageId": None,
    "messages": [
        {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "Name a lighthouse."}]},
        {
            "id": "m2",
            "role": "assistant",
            "parts": [
                {"type": "step-start"},
                {"type": "text", "text": "The Tower of Hercules.", "state": "done"},
            ],
        },
        {
            "id": "m3",
            "role": "user",
            "parts": [{"type": "text", "text": "Where "}, {"type": "text", "text": "is it?"}],
        },
    ],
}


async def read_ui_stream(response: httpx.Response) -> list[Any]:
    """The ``data:`` payloads of an SSE response, JSON-decoded (``[DONE]`` kept as the string)."""
    assert response.status_code == 200, await response.aread()
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads: list[Any] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data = line[len("data:") :].strip()
            payloads.append(data if data == "[DONE]" else json.loads(data))
    return payloads


def check_parts(payloads: list[Any]) -> list[dict[str, Any]]:
    """Every part has only the fields the AI SDK accepts, the stream ends with ``[DONE]``; returns
    the parts."""
    assert payloads[-1] == "[DONE]"
    assert "[DONE]" not in payloads[:-1]
    parts: list[dict[str, Any]] = payloads[:-1]
    for part in parts:
        kind = "data-*" if part["type"].startswith("data-") else part["type"]
        assert kind in ALLOWED_FIELDS, part
        assert set(part) <= ALLOWED_FIELDS[kind], part
    return parts


def protocol_order(parts: list[dict[str, Any]]) -> list[str]:
    """Part types without custom data parts, consecutive text deltas folded into one."""
    order: list[str] = []
    for part in parts:
        kind = part["type"]
        if kind.startswith("data-") or (kind == "text-delta" and order and order[-1] == "text-delta"):
            continue
        order.append(kind)
    return order


async def test_use_chat_request_streams_a_billed_chat_run(
    api_url: str, api: httpx.AsyncClient, user: Tenant, paced_provider: FakeProvider
) -> None:
    before = await balance(api, user)
    async with (
        httpx.AsyncClient(base_url=api_url, timeout=60) as http,
        http.stream(
            "POST", "/api/v1/graphs/langgraph:chat/chat", json=USE_CHAT_BODY, headers=user.headers
        ) as resp,
    ):
        run_id = resp.headers["x-runledger-run-id"]
        parts = check_parts(await read_ui_stream(resp))

    assert protocol_order(parts) == [
        "start",
        "start-step",
        "text-start",
        "text-delta",
        "text-end",
        "finish-step",
        "finish",
    ]
    assert parts[0]["messageId"] == run_id
    assert parts[0]["messageMetadata"]["runledger"]["run_id"] == run_id
    deltas = [p for p in parts if p["type"] == "text-delta"]
    assert len(deltas) > 1  # really streamed
    text_id = next(p["id"] for p in parts if p["type"] == "text-start")
    assert {p["id"] for p in parts if p["type"].startswith("text-")} == {text_id}
    reply = "".join(p["delta"] for p in deltas)

    run = await run_detail(api, user, run_id)
    assert run["status"] == "success"
    assert run["output"] == {"reply": reply}
    assert reply == "A fake answer to: Where is it?"
    assert run["input"] == {
        "messages": [
            {"role": "user", "content": "Name a lighthouse."},
            {"role": "assistant", "content": "The Tower of Hercules."},
            {"role": "user", "content": "Where is it?"},
        ]
    }
    usage = [p["data"] for p in parts if p["type"] == "data-usage"]
    assert [u["scope"] for u in usage] == ["call", "run"]
    assert usage[0]["credits"] == usage[1]["cost_credits"] == run["cost_credits"] > 0
    assert parts[-1]["messageMetadata"]["runledger"]["cost_credits"] == run["cost_credits"]
    assert [p["data"]["status"] for p in parts if p["type"] == "data-status"] == [
        "pending",
        "running",
        "success",
    ]
    assert all(p["transient"] for p in parts if p["type"] == "data-status")
    receipts = await receipts_of(api, user, run_id)
    assert len(receipts) == 1
    assert before - await balance(api, user) == run["cost_credits"]
    assert usage[0]["balance_after"] == await balance(api, user)


async def test_any_run_replays_as_a_ui_stream_one_step_per_model_call(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    run = await wait_for_run(
        api, user, (await start_run(api, user, graph_id="langgraph:brief")).json()["run_id"]
    )
    async with api.stream("GET", f"/api/v1/runs/{run['run_id']}/ui-stream", headers=user.headers) as resp:
        parts = check_parts(await read_ui_stream(resp))
    step = ["start-step", "text-start", "text-delta", "text-end", "finish-step"]
    assert protocol_order(parts) == ["start", *step, *step, *step, "finish"]
    for key, call_key in (("outline", "outline:1.0"), ("draft", "draft:2.0"), ("review", "review:3.0")):
        text = "".join(p["delta"] for p in parts if p["type"] == "text-delta" and p["id"] == call_key)
        assert text == run["output"][key]
    calls = [p["data"] for p in parts if p["type"] == "data-usage" and p["data"]["scope"] == "call"]
    assert sum(c["credits"] for c in calls) == run["cost_credits"]
    assert len({p["id"] for p in parts if p["type"] == "data-usage"}) == 4  # 3 calls + the run total


async def test_a_tool_call_is_its_own_step_with_input_and_output(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    started = await start_run(api, user, "langgraph:dated_note", {"input": {"topic": "tides"}})
    run = await wait_for_run(api, user, started.json()["run_id"])
    assert run["status"] == "success", run
    async with api.stream("GET", f"/api/v1/runs/{run['run_id']}/ui-stream", headers=user.headers) as resp:
        parts = check_parts(await read_ui_stream(resp))
    tool_step = ["start-step", "tool-input-available", "tool-output-available", "finish-step"]
    text_step = ["start-step", "text-start", "text-delta", "text-end", "finish-step"]
    assert protocol_order(parts) == ["start", *tool_step, *text_step, "finish"]
    tool_input = next(p for p in parts if p["type"] == "tool-input-available")
    tool_output = next(p for p in parts if p["type"] == "tool-output-available")
    assert tool_input == {
        "type": "tool-input-available",
        "toolCallId": "read_clock:1.tool:0",
        "toolName": "core__current_time",
        "input": {},
    }
    assert tool_output["toolCallId"] == "read_clock:1.tool:0"
    assert tool_output["output"]["utc"] == run["output"]["written_at"]


async def test_ui_stream_auth_and_tenancy(api: httpx.AsyncClient, user: Tenant) -> None:
    run_id = (await start_run(api, user)).json()["run_id"]
    assert (await api.get(f"/api/v1/runs/{run_id}/ui-stream")).status_code == 401
    other = await create_user(api, name="other")
    resp = await api.get(f"/api/v1/runs/{run_id}/ui-stream", headers=other.headers)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "run_not_found"
    await wait_for_run(api, user, run_id)


async def test_chat_refusals_are_json_before_any_stream(api: httpx.AsyncClient, user: Tenant) -> None:
    broke = await create_user(api, credits=0, name="broke")
    resp = await api.post("/api/v1/graphs/langgraph:chat/chat", json=USE_CHAT_BODY, headers=broke.headers)
    assert resp.status_code == 402
    assert resp.json()["error"]["code"] == "insufficient_credits"

    for graph_id, body, status, code in (
        ("langgraph:nope", USE_CHAT_BODY, 404, "graph_not_found"),
        ("langgraph:poet", USE_CHAT_BODY, 422, "validation_error"),
        ("langgraph:chat", {"messages": []}, 422, "validation_error"),
        ("langgraph:chat", {"id": "x"}, 422, "validation_error"),
        (
            "langgraph:chat",
            {"messages": [{"role": "user", "parts": [{"type": "file"}]}]},
            422,
            "validation_error",
        ),
    ):
        resp = await api.post(f"/api/v1/graphs/{graph_id}/chat", json=body, headers=user.headers)
        assert resp.status_code == status, (graph_id, body, resp.text)
        assert resp.json()["error"]["code"] == code
    assert (await api.get("/api/v1/runs", headers=user.headers)).json()["runs"] == []
    assert (await api.post("/api/v1/graphs/langgraph:chat/chat", json=USE_CHAT_BODY)).status_code == 401


async def test_chat_honours_the_idempotency_key_and_a_system_prompt(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    body = {**USE_CHAT_BODY, "system": "Answer briefly."}
    headers = {**user.headers, "Idempotency-Key": "ui-chat-1"}
    streams = []
    for path in ("/api/v1/graphs/langgraph:chat/chat", "/api/v1/graphs/runledger-chat/chat"):  # an alias
        async with api.stream("POST", path, json=body, headers=headers) as resp:
            run_id = resp.headers["x-runledger-run-id"]
            streams.append((run_id, check_parts(await read_ui_stream(resp))))
    run_ids = {run_id for run_id, _ in streams}
    assert len(run_ids) == 1
    assert streams[0][1] == streams[1][1]  # the same run, replayed from its events
    (run_id,) = run_ids
    run = await run_detail(api, user, run_id)
    assert run["input"]["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert len(await receipts_of(api, user, run_id)) == 1


async def test_a_failed_run_ends_with_an_error_part(
    api_url: str, api: httpx.AsyncClient, user: Tenant, fake_provider: FakeProvider
) -> None:
    async with (
        held_model_calls(fake_provider),
        httpx.AsyncClient(base_url=api_url, timeout=60) as http,
        http.stream(
            "POST", "/api/v1/graphs/langgraph:chat/chat", json=USE_CHAT_BODY, headers=user.headers
        ) as resp,
    ):
        reading = asyncio.create_task(read_ui_stream(resp))
        run = await cancel_the_held_run(api, user, fake_provider)
        parts = check_parts(await reading)
    order = protocol_order(parts)
    assert order[0] == "start"
    assert order[-2:] == ["error", "finish"]
    error = next(p for p in parts if p["type"] == "error")
    assert error["errorText"].startswith(f"{run['error_code']}: ")
    assert parts[-1]["messageMetadata"]["runledger"]["status"] == run["status"]


def test_a_refused_or_unanswered_tool_call_is_shown_as_an_error() -> None:
    """A call denied by policy has a result and no start; a call cut off by the run's end has a
    start and no result. Both end as ``tool-output-error`` for the call the client was shown."""
    stream = UIMessageStream(GraphRun(run_id="r", graph_id="langgraph:poet"))
    denied = {
        "call_id": "n:tool:0",
        "tool_id": "core__current_time",
        "ok": False,
        "args": {"timezone": "UTC"},
        "error_code": "tool_policy_denied",
        "message": "this run may not use 'core__current_time'",
    }
    parts = stream.on_event(RunEventView(1, "tool_call_result", denied))
    assert [p["type"] for p in parts] == [
        "start-step",
        "tool-input-available",
        "tool-output-error",
        "finish-step",
    ]
    assert parts[1]["input"] == {"timezone": "UTC"}
    assert parts[2]["errorText"].startswith("tool_policy_denied: ")
    started = {"call_id": "n:tool:1", "tool_id": "core__current_time", "effect": "read_only", "args": {}}
    stream.on_event(RunEventView(2, "tool_call_start", started))
    assert stream.on_event(RunEventView(3, "tool_call_start", started)) == []  # a retry: shown once
    ended = stream.on_event(
        RunEventView(4, "error", {"status": "error", "code": "graph_failed", "cost_credits": 0})
    )
    assert ended[0] == {
        "type": "tool-output-error",
        "toolCallId": "n:tool:1",
        "errorText": "the run ended before the tool answered",
    }
    assert ended[1] == {"type": "finish-step"}
