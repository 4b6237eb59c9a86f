"""Runs as Vercel AI SDK UI message streams, for ``useChat`` / assistant-ui front ends.

Protocol: the AI SDK 5 "UI message stream" (data stream protocol over SSE, response header
``x-vercel-ai-ui-message-stream: v1``), https://ai-sdk.dev/v5/docs/ai-sdk-ui/stream-protocol — the
same wire format AI SDK 6 reads (its ``uiMessageChunkSchema`` in ``ai/src/ui-message-stream/
ui-message-chunks.ts``). The AI SDK validates each chunk with strict schemas, so every part below
carries exactly the documented fields and no others:

- ``{"type":"start","messageId":<run_id>,"messageMetadata":{"runledger":{run_id, graph_id}}}``
- per model call (one AI SDK "step"): ``{"type":"start-step"}``, ``{"type":"text-start","id":<call_key>}``,
  ``{"type":"text-delta","id":<call_key>,"delta":"..."}`` …, ``{"type":"text-end","id":<call_key>}``,
  then runledger's cost of the call as a custom data part
  ``{"type":"data-usage","id":"usage:<call_key>","data":{"scope":"call", run_id, call_key, model,
  tokens_in, tokens_out, cost_usd, credits, balance_after}}``, then ``{"type":"finish-step"}``
- per tool call (its own step): ``{"type":"start-step"}``, ``{"type":"tool-input-available",
  "toolCallId":<call_id>,"toolName":<tool_id>,"input":{...}}``, then ``{"type":"tool-output-available",
  "toolCallId","output"}`` or ``{"type":"tool-output-error","toolCallId","errorText":"<code>: <message>"}``,
  then ``{"type":"finish-step"}``
- run status changes as transient data parts ``{"type":"data-status","data":{status, pause_reason?},
  "transient":true}`` (shown live, e.g. "paused for credits", never stored in the message)
- at the end, the run's totals ``{"type":"data-usage","id":"usage:run","data":{"scope":"run", run_id,
  status, cost_credits, tokens_in, tokens_out, model_calls}}``; a failed, cancelled or skipped run
  also sends ``{"type":"error","errorText":"<code>: <message>"}``; then
  ``{"type":"finish","messageMetadata":{"runledger":{run_id, status, cost_credits}}}`` and
  ``data: [DONE]``.

Routes:

- ``GET /api/v1/runs/{run_id}/ui-stream``: any run of the caller, replayed from its first event (a
  UI message stream always starts with ``start``, so a reconnect replays the whole message).
- ``POST /api/v1/graphs/{graph_id}/chat``: the ``useChat`` / assistant-ui request body
  (``{id, messages: [{id, role, parts: [{type: "text", text}]}], trigger, messageId, system?}``) starts
  a billed chat run of the graph (which must take ``messages``; ``graph_id`` may be a chat alias) and
  streams it. Text parts are joined; other parts (files, tools, reasoning) are ignored, and messages
  left empty are dropped. ``Idempotency-Key`` is honoured as for any run start. A refusal (402,
  404, 422) is answered as JSON before any stream starts.

Text deltas are published best effort by the worker; the run's output is authoritative.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.chat_runs import (
    Turn,
    chat_graph_id,
    error_code_of,
    start_chat_run,
    terminal_from_row,
)
from api.deps import AppState, StateDep, UserDep
from api.errors import Unprocessable
from api.event_stream import PING_SECONDS, RunEventView, follow_run
from api.openapi import errors
from api.params import ObjectId
from api.run_service import own_run
from db.models import GraphRun

router = APIRouter(prefix="/api/v1", tags=["chat"])

UI_MESSAGE_STREAM_HEADERS = {
    "x-vercel-ai-ui-message-stream": "v1",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class UIMessageStream:
    """Translates a run's events into UI message stream parts (one instance per response)."""

    def __init__(self, run: GraphRun) -> None:
        self.run = run
        self.open_texts: list[str] = []
        self.open_tools: list[str] = []
        self.step_open = False
        self.tokens_in = 0
        self.tokens_out = 0
        self.model_calls = 0

    def start(self) -> list[dict[str, Any]]:
        meta = {"runledger": {"run_id": self.run.run_id, "graph_id": self.run.graph_id}}
        return [{"type": "start", "messageId": self.run.run_id, "messageMetadata": meta}]

    def on_event(self, event: RunEventView) -> list[dict[str, Any]]:
        data = event.data
        if event.event == "text_delta":
            return self._text(str(data.get("call_key") or "text"), str(data.get("text") or ""))
        if event.event == "usage":
            return self._usage(data)
        if event.event == "status":
            status = {k: data[k] for k in ("status", "pause_reason") if data.get(k) is not None}
            return [{"type": "data-status", "data": status, "transient": True}]
        if event.event == "tool_call_start":
            return self._tool_input(data)
        if event.event == "tool_call_result":
            return self._tool_output(data)
        if event.event in ("done", "error"):
            return self.finish(event)
        return []  # anything newer: not part of this mapping (yet)

    def _tool_input(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        call_id = str(data.get("call_id"))
        if call_id in self.open_tools:
            return []  # a retried execution started the same call again: it is shown once
        parts: list[dict[str, Any]] = []
        if not self.step_open:
            parts.append({"type": "start-step"})
            self.step_open = True
        self.open_tools.append(call_id)
        parts.append(
            {
                "type": "tool-input-available",
                "toolCallId": call_id,
                "toolName": str(data.get("tool_id")),
                "input": data.get("args") or {},
            }
        )
        return parts

    def _tool_output(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        call_id = str(data.get("call_id"))
        # A call refused before it started (policy, bad input) is shown as asked, then failed.
        parts = [] if call_id in self.open_tools else self._tool_input(data)
        self.open_tools.remove(call_id)
        if data.get("ok"):
            parts.append(
                {"type": "tool-output-available", "toolCallId": call_id, "output": data.get("result")}
            )
        else:
            error = f"{data.get('error_code')}: {data.get('message')}"
            parts.append({"type": "tool-output-error", "toolCallId": call_id, "errorText": error})
        if not self.open_texts and not self.open_tools and self.step_open:
            parts.append({"type": "finish-step"})
            self.step_open = False
        return parts

    def _text(self, text_id: str, delta: str) -> list[dict[str, Any]]:
        if not delta:
            return []
        parts: list[dict[str, Any]] = []
        if text_id not in self.open_texts:
            if not self.step_open:
                parts.append({"type": "start-step"})
                self.step_open = True
            parts.append({"type": "text-start", "id": text_id})
            self.open_texts.append(text_id)
        parts.append({"type": "text-delta", "id": text_id, "delta": delta})
        return parts

    def _usage(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        call_key = str(data.get("call_key") or "call")
        self.tokens_in += int(data.get("tokens_in") or 0)
        self.tokens_out += int(data.get("tokens_out") or 0)
        self.model_calls += 1
        parts: list[dict[str, Any]] = []
        if call_key in self.open_texts:
            self.open_texts.remove(call_key)
            parts.append({"type": "text-end", "id": call_key})
        usage = {
            "scope": "call",
            "run_id": self.run.run_id,
            **{
                k: data.get(k)
                for k in (
                    "call_key",
                    "model",
                    "tokens_in",
                    "tokens_out",
                    "cost_usd",
                    "credits",
                    "balance_after",
                )
            },
        }
        parts.append({"type": "data-usage", "id": f"usage:{call_key}", "data": usage})
        if not self.open_texts and self.step_open:
            parts.append({"type": "finish-step"})
            self.step_open = False
        return parts

    def _close(self) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = [{"type": "text-end", "id": text_id} for text_id in self.open_texts]
        self.open_texts = []
        parts += [
            {
                "type": "tool-output-error",
                "toolCallId": call_id,
                "errorText": "the run ended before the tool answered",
            }
            for call_id in self.open_tools
        ]
        self.open_tools = []
        if self.step_open:
            parts.append({"type": "finish-step"})
            self.step_open = False
        return parts

    def finish(self, terminal: RunEventView) -> list[dict[str, Any]]:
        data = terminal.data
        parts = self._close()
        totals = {
            "scope": "run",
            "run_id": self.run.run_id,
            "status": data.get("status"),
            "cost_credits": data.get("cost_credits"),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "model_calls": self.model_calls,
        }
        parts.append({"type": "data-usage", "id": "usage:run", "data": totals})
        if terminal.event != "done":
            message = data.get("message") or data.get("status") or "the run failed"
            parts.append({"type": "error", "errorText": f"{error_code_of(data)}: {message}"})
        meta = {
            "runledger": {
                "run_id": self.run.run_id,
                "status": data.get("status"),
                "cost_credits": data.get("cost_credits"),
            }
        }
        parts.append({"type": "finish", "messageMetadata": meta})
        return parts


async def ui_message_parts(state: AppState, run: GraphRun) -> AsyncIterator[dict[str, Any]]:
    """The run's UI message stream parts, from ``start`` to ``finish``."""
    stream = UIMessageStream(run)
    for part in stream.start():
        yield part
    finished = False
    async for event in follow_run(state, run.run_id):
        for part in stream.on_event(event):
            yield part
        finished = finished or event.event in ("done", "error")
    if not finished:  # a finished run whose events were pruned
        for part in stream.finish(await terminal_from_row(state, run.run_id)):
            yield part


def ui_message_stream_response(state: AppState, run: GraphRun) -> EventSourceResponse:
    async def sse() -> AsyncIterator[ServerSentEvent]:
        async for part in ui_message_parts(state, run):
            yield ServerSentEvent(data=json.dumps(part, separators=(",", ":")))
        yield ServerSentEvent(data="[DONE]")

    return EventSourceResponse(
        sse(), ping=PING_SECONDS, headers={**UI_MESSAGE_STREAM_HEADERS, "X-Runledger-Run-Id": run.run_id}
    )


@router.get("/runs/{run_id}/ui-stream", response_class=EventSourceResponse)
async def run_ui_stream(run_id: ObjectId, principal: UserDep, state: StateDep) -> EventSourceResponse:
    run = await own_run(state.database, principal, run_id)
    return ui_message_stream_response(state, run)


class UIPartIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class UIMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    parts: list[UIPartIn] | None = None
    #: AI SDK 4 messages carried their text here; still accepted.
    content: str | None = None

    def text(self) -> str:
        if self.parts is None:
            return self.content or ""
        return "".join(p.text or "" for p in self.parts if p.type == "text")


class UIChatRequest(BaseModel):
    """What ``useChat``'s default transport (and assistant-ui's) posts; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    messages: list[UIMessageIn] = Field(min_length=1, max_length=100)
    #: assistant-ui sends its system prompt here.
    system: str | None = Field(default=None, max_length=32_000)


def _turns(body: UIChatRequest) -> list[Turn]:
    turns = [Turn("system", body.system)] if body.system else []
    turns += [Turn(m.role, text) for m in body.messages if (text := m.text())]
    if not any(t.role != "system" for t in turns):
        raise Unprocessable("messages: no message has any text")
    return turns


@router.post("/graphs/{graph_id}/chat", response_class=EventSourceResponse, responses=errors(402, 503))
async def chat(
    graph_id: str,
    body: UIChatRequest,
    principal: UserDep,
    state: StateDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> EventSourceResponse:
    resolved = await chat_graph_id(state, graph_id)
    run, _ = await start_chat_run(
        state, principal, graph_id=resolved, messages=_turns(body), idempotency_key=idempotency_key
    )
    return ui_message_stream_response(state, run)
