"""A local OpenAI-compatible model provider: the only fake in the suite (the outermost edge).

LiteLLM talks to it over real HTTP exactly as to a provider, so usage, cost and call ids flow through
LiteLLM's own code. It counts every completion it answers and can be told to fail the next calls,
or to break them (``ProviderLog.breaks``, one mode per call, in order):

- ``refuse``: a 400 before anything is sent (the call never began);
- ``drop``: 200 and the stream's headers, then the connection closes before any chunk;
- ``disconnect``: three chunks of text, then the connection closes (no usage, no ``[DONE]``);
- ``garbage``: two chunks of text, then a chunk that is not JSON, then the connection closes;
- ``error``: two chunks of text, then an error object in the stream (as providers report an
  overload mid-answer), then the stream ends.

A broken call that sent output is recorded in ``ProviderLog.broken`` (what a real provider bills).

With tools in the request it answers as the offline model does (``runledger.llm.offline``): a user
message gets one tool call (the tool ``tool_choice`` names, else the first; arguments valid for its
schema), streamed in pieces like a provider's; a tool result gets text.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from runledger.llm.offline import sample_arguments
from tests.fakes.loopback import LoopbackServer


@dataclass
class ProviderLog:
    completions: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    #: Fail the next N requests whose last message is a tool result (the call after a tool ran).
    fail_tool_results: int = 0
    #: When set, each call waits until the gate opens (a test can act while a call is in flight).
    gate: threading.Event | None = None
    waiting: int = 0
    #: Calls whose client went away before the answer was ready (a killed worker): never delivered.
    aborted: list[str] = field(default_factory=list)
    #: When set, every answer carries this response id (a provider that repeats its ids).
    repeat_id: str | None = None
    #: When set, answers report this many completion tokens (a long answer, within ``max_tokens``).
    completion_tokens: int | None = None
    #: How the next calls break (see the module docstring); consumed one per call.
    breaks: list[str] = field(default_factory=list)
    #: Broken calls that began answering: ``{"id", "model", "words_sent"}``.
    broken: list[dict[str, Any]] = field(default_factory=list)
    #: Every request body that reached the provider (its ``max_tokens`` included).
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Seconds between streamed chunks: a test of live streaming paces the answer like a real model
    #: (the worker coalesces a call's deltas per 50 ms window, so an instant stream is one event).
    chunk_delay: float = 0.0
    #: The streamed answer's ``Content-Type`` (some OpenAI-compatible servers send another).
    stream_media_type: str = "text/event-stream"
    #: Whether a stream ends with a usage chunk (some providers ignore ``include_usage``).
    stream_usage: bool = True

    def count(self) -> int:
        with self.lock:
            return len(self.completions)

    def ids(self) -> list[str]:
        with self.lock:
            return [c["id"] for c in self.completions]


def _words(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in messages)


def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools") or []
    messages = body.get("messages") or []
    choice = body.get("tool_choice")
    if not tools or choice == "none" or (messages and messages[-1].get("role") == "tool"):
        return None
    tool = tools[0]
    if isinstance(choice, dict):
        wanted = choice.get("function", {}).get("name")
        tool = next((t for t in tools if t["function"]["name"] == wanted), tool)
    user = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
    arguments = sample_arguments(tool["function"].get("parameters") or {}, user)
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": tool["function"]["name"], "arguments": json.dumps(arguments)},
    }


def build_app(log: ProviderLog) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Any:
        body = await request.json()
        gate = log.gate
        if gate is not None:
            with log.lock:
                log.waiting += 1
            await asyncio.to_thread(gate.wait)
            with log.lock:
                log.waiting -= 1
            if await request.is_disconnected():
                with log.lock:
                    log.aborted.append(str(body["messages"][-1].get("content", ""))[:60])
                return JSONResponse({"error": {"message": "client went away"}}, 499)
        with log.lock:
            log.requests.append(body)
            after_tool = bool(body["messages"]) and body["messages"][-1].get("role") == "tool"
            if log.fail_next > 0 or (after_tool and log.fail_tool_results > 0):
                if log.fail_next > 0:
                    log.fail_next -= 1
                else:
                    log.fail_tool_results -= 1
                return JSONResponse({"error": {"message": "injected failure", "type": "server_error"}}, 500)
            mode = log.breaks.pop(0) if log.breaks else None
        if mode == "refuse":
            return JSONResponse(
                {"error": {"message": "injected refusal", "type": "invalid_request_error"}}, 400
            )
        prompt = str(body["messages"][-1].get("content", ""))
        tool_call = _tool_call(body)
        text = "" if tool_call else f"A fake answer to: {prompt[:60]}"
        call_id = log.repeat_id or f"chatcmpl-fake-{uuid.uuid4().hex}"
        if mode is not None:
            return StreamingResponse(
                _broken_stream(log, mode, call_id, body.get("model", ""), text),
                media_type=log.stream_media_type,
            )
        usage = {
            "prompt_tokens": _words(body["messages"]) + 3,
            "completion_tokens": log.completion_tokens or len(text.split()) + (8 if tool_call else 0),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        with log.lock:
            log.completions.append(
                {
                    "id": call_id,
                    "model": body.get("model"),
                    "usage": usage,
                    "tool_call": tool_call,
                    "request": body,
                }
            )
        created = int(time.time())
        if body.get("stream"):
            return StreamingResponse(
                _stream(
                    call_id,
                    body.get("model", ""),
                    text,
                    usage if log.stream_usage else None,
                    created,
                    log.chunk_delay,
                    tool_call,
                ),
                media_type=log.stream_media_type,
            )
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if tool_call:
            message["tool_calls"] = [tool_call]
        return {
            "id": call_id,
            "object": "chat.completion",
            "created": created,
            "model": body.get("model"),
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if tool_call else "stop"}
            ],
            "usage": usage,
        }

    return app


async def _stream(
    call_id: str,
    model: str,
    text: str,
    usage: dict[str, int] | None,
    created: int,
    delay: float,
    tool_call: dict[str, Any] | None = None,
) -> AsyncIterator[str]:
    base: dict[str, Any] = {
        "id": call_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
    }
    for i, word in enumerate(text.split(" ") if text else []):
        piece = word if i == 0 else " " + word
        chunk = {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        yield f"data: {json.dumps(chunk)}\n\n"
        await asyncio.sleep(delay)
    if tool_call:
        # As providers stream a call: its id and name first, then the arguments in pieces.
        arguments = tool_call["function"]["arguments"]
        half = len(arguments) // 2
        head = {
            "index": 0,
            "id": tool_call["id"],
            "type": "function",
            "function": {"name": tool_call["function"]["name"], "arguments": ""},
        }
        pieces: list[dict[str, Any]] = [head] + [
            {"index": 0, "function": {"arguments": part}} for part in (arguments[:half], arguments[half:])
        ]
        for call_piece in pieces:
            call_chunk: dict[str, Any] = {
                **base,
                "choices": [{"index": 0, "delta": {"tool_calls": [call_piece]}, "finish_reason": None}],
            }
            yield f"data: {json.dumps(call_chunk)}\n\n"
            await asyncio.sleep(delay)
    finish = "tool_calls" if tool_call else "stop"
    yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {}, 'finish_reason': finish}]})}\n\n"
    if usage is not None:
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


class _BrokenStream(Exception):
    """Raised inside a streaming body: uvicorn drops the connection mid-response."""


async def _broken_stream(
    log: ProviderLog, mode: str, call_id: str, model: str, text: str
) -> AsyncIterator[str]:
    base = {"id": call_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    words = text.split(" ")
    sent = {"drop": 0, "disconnect": 3, "garbage": 2, "error": 2}[mode]
    if sent:
        with log.lock:
            log.broken.append({"id": call_id, "model": model, "words_sent": sent})
    for i, word in enumerate(words[:sent]):
        piece = word if i == 0 else " " + word
        chunk = {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
        yield f"data: {json.dumps(chunk)}\n\n"
        await asyncio.sleep(0.01)
    if mode == "garbage":
        yield 'data: {"id": "' + call_id + '", "choices": [{"delta": \n\n'
        await asyncio.sleep(0.01)
    if mode == "error":
        yield f"data: {json.dumps({'error': {'message': 'overloaded', 'type': 'server_error'}})}\n\n"
        return
    raise _BrokenStream(mode)


class FakeProvider(LoopbackServer):
    """Runs the fake provider on a loopback port in a background thread."""

    name = "fake provider"

    def __init__(self) -> None:
        self.log = ProviderLog()
        super().__init__(build_app(self.log))
        self.url = f"{self.base_url}/v1"
