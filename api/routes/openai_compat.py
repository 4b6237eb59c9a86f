"""OpenAI-compatible chat completions: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Point any OpenAI client at ``{api}/v1`` with a runledger API key as its ``api_key``::

    client = openai.AsyncOpenAI(base_url="https://runledger.example/v1", api_key=RUNLEDGER_KEY)
    await client.chat.completions.create(model="langgraph:chat", messages=[...])

``model`` names a graph whose input is a conversation (today ``langgraph:chat``); clients that reject
a colon in a model name may use an alias (``runledger/chat``, ``runledger-chat``, ``runledger:chat``).
Each request is a normal billed run for the caller, started through ``start_api_run``: the 402
preflight, the credit hold, the ledger and an ``Idempotency-Key`` header (same key and body → the
same run, answered again from its events, billed once) all apply. The answer is read from the run's
durable events.

- Non-streamed: one ``chat.completion`` (``id`` = ``chatcmpl-{run_id}``), ``usage`` summed over the
  run's ``usage`` events, plus a ``runledger`` extension object (run id, cost in credits, balance).
  The request waits at most ``WAIT_SECONDS``; then it answers 504 ``run_wait_timeout`` and the run
  goes on (it is billed either way; follow it at ``/api/v1/runs/{run_id}``).
- ``stream: true``: ``text/event-stream`` of ``chat.completion.chunk`` objects, one per ``text_delta``
  event, then a chunk with ``finish_reason: "stop"`` (carrying the ``runledger`` object), a usage chunk
  (``choices: []``) when ``stream_options.include_usage`` is set, then ``data: [DONE]``. A run that
  fails after the stream started sends ``data: {"error": {...}}`` — the OpenAI client raises it.
- Errors: every error body of these routes is OpenAI-shaped and still our envelope,
  ``{"error": {"code", "message", "type", "param"}}``. 402 ``insufficient_credits`` (``type``
  ``insufficient_quota``) makes the OpenAI client raise ``APIStatusError`` (status 402); a run that
  ends in error answers 502 with the run's own error code (402 when it ended for lack of credits).
- Sampling parameters (``temperature``, ``top_p``, ``max_tokens``, ``user``, …) are accepted and
  ignored: the graph decides how the model is called. ``n`` > 1, ``tools`` and non-text content
  parts are refused with 422. A client disconnect does not stop the run.
- Every response carries ``X-Runledger-Run-Id``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.chat_runs import (
    MODEL_ALIASES,
    Turn,
    chat_graph_id,
    error_code_of,
    reply_text,
    start_chat_run,
    terminal_from_row,
)
from api.deps import AppState, StateDep, UserDep
from api.errors import AppError, PaymentRequired, Unprocessable, error_body
from api.event_stream import PING_SECONDS, RunEventView, follow_run
from api.openapi import errors
from db import catalog
from db.models import GraphRun
from runledger.contracts.catalog import accepts_messages
from runledger.contracts.errors import ErrorCode

#: How long a non-streamed completion waits for its run before answering 504 (the run goes on).
WAIT_SECONDS = 300.0
#: Run error codes answered as "payment required" rather than as a failed upstream.
CREDIT_CODES = frozenset({ErrorCode.INSUFFICIENT_CREDITS, ErrorCode.CREDITS_EXHAUSTED})

_OPENAI_TYPES = {
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    429: "rate_limit_error",
}


def openai_error_type(status_code: int) -> str:
    if status_code in _OPENAI_TYPES:
        return _OPENAI_TYPES[status_code]
    return "server_error" if status_code >= 500 else "invalid_request_error"


def openai_error_body(status_code: int, code: str, message: str) -> dict[str, Any]:
    """Our envelope with OpenAI's ``type`` and ``param`` added: both kinds of client parse it."""
    body = error_body(code, message)
    body["error"].update(type=openai_error_type(status_code), param=None)
    return body


class RunFailed(AppError):
    status_code = 502


class RunWaitTimeout(AppError):
    status_code = 504
    code = ErrorCode.RUN_WAIT_TIMEOUT


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def openai_error_response(exc: AppError, headers: dict[str, str] | None = None) -> JSONResponse:
    if exc.status_code == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    body = openai_error_body(exc.status_code, exc.code, exc.message)
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


class OpenAIRoute(APIRoute):
    """Renders the route's errors — auth and body validation included — in the OpenAI shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def openai_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except AppError as exc:
                return openai_error_response(exc)
            except RequestValidationError as exc:
                body = openai_error_body(422, ErrorCode.VALIDATION_ERROR, _validation_message(exc))
                return JSONResponse(body, status_code=422)

        return openai_errors


router = APIRouter(prefix="/v1", tags=["openai-compatible"], route_class=OpenAIRoute)


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    #: ``developer`` is OpenAI's newer name for ``system``.
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=100)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = None
    tools: list[Any] | None = None


def _turn(message: ChatMessageIn, index: int) -> Turn:
    role = "system" if message.role == "developer" else message.role
    if message.content is None or isinstance(message.content, str):
        return Turn(role, message.content or "")
    texts = []
    for part in message.content:
        if part.type != "text" or part.text is None:
            raise Unprocessable(f"messages.{index}.content: only text content parts are supported")
        texts.append(part.text)
    return Turn(role, "".join(texts))


def _turns(body: ChatCompletionRequest) -> list[Turn]:
    if body.n not in (None, 1):
        raise Unprocessable("n: only one choice per completion is supported")
    if body.tools:
        raise Unprocessable("tools: tool calling is not supported by this endpoint")
    return [_turn(m, i) for i, m in enumerate(body.messages)]


def _run_error(data: dict[str, Any]) -> AppError:
    code = error_code_of(data)
    message = f"run {data.get('status') or 'error'}: {data.get('message') or code}"
    if code in CREDIT_CODES:
        return PaymentRequired(message, code=code)
    return RunFailed(message, code=code)


class _Tally:
    """Token and credit totals of a run, from its ``usage`` events."""

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.balance_after: int | None = None

    def add(self, data: dict[str, Any]) -> None:
        self.prompt_tokens += int(data.get("tokens_in") or 0)
        self.completion_tokens += int(data.get("tokens_out") or 0)
        if data.get("balance_after") is not None:
            self.balance_after = int(data["balance_after"])

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


def _extension(run: GraphRun, terminal: dict[str, Any], tally: _Tally) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "graph_id": run.graph_id,
        "status": terminal.get("status"),
        "cost_credits": terminal.get("cost_credits"),
        "balance_after": tally.balance_after,
        "events": f"/api/v1/runs/{run.run_id}/events",
    }


async def _wait_for_terminal(state: AppState, run: GraphRun, tally: _Tally) -> RunEventView:
    async for event in follow_run(state, run.run_id):
        if event.event == "usage":
            tally.add(event.data)
        elif event.event in ("done", "error"):
            return event
    return await terminal_from_row(state, run.run_id)


@router.post(
    "/chat/completions",
    response_model=None,
    responses={
        200: {
            "description": "a chat.completion, or with stream: true a stream of chat.completion.chunk",
            "content": {"application/json": {"schema": {"type": "object"}}, "text/event-stream": {}},
        },
        **errors(402, 404, 502, 503, 504),
    },
)
async def chat_completions(
    body: ChatCompletionRequest,
    principal: UserDep,
    state: StateDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Response:
    graph_id = await chat_graph_id(state, body.model)
    turns = _turns(body)
    run, _ = await start_chat_run(
        state, principal, graph_id=graph_id, messages=turns, idempotency_key=idempotency_key
    )
    headers = {"X-Runledger-Run-Id": run.run_id}
    if body.stream:
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return EventSourceResponse(
            _chunks(state, run, body.model, include_usage=include_usage),
            ping=PING_SECONDS,
            headers={**headers, "Cache-Control": "no-cache"},
        )
    tally = _Tally()
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            terminal = await _wait_for_terminal(state, run, tally)
    except TimeoutError:
        timeout = RunWaitTimeout(
            f"run {run.run_id} did not finish within {WAIT_SECONDS:.0f}s; it goes on: "
            f"follow it at /api/v1/runs/{run.run_id}"
        )
        return openai_error_response(timeout, headers)
    if terminal.event != "done":
        return openai_error_response(_run_error(terminal.data), headers)
    completion = {
        "id": f"chatcmpl-{run.run_id}",
        "object": "chat.completion",
        "created": int(run.created_at.timestamp()),
        "model": body.model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": reply_text(terminal.data.get("output")),
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": tally.usage(),
        "runledger": _extension(run, terminal.data, tally),
    }
    return JSONResponse(completion, headers=headers)


async def _chunks(
    state: AppState, run: GraphRun, model: str, *, include_usage: bool
) -> AsyncIterator[ServerSentEvent]:
    base = {
        "id": f"chatcmpl-{run.run_id}",
        "object": "chat.completion.chunk",
        "created": int(run.created_at.timestamp()),
        "model": model,
        "system_fingerprint": None,
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> ServerSentEvent:
        body: dict[str, Any] = {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            **extra,
        }
        if include_usage:
            body["usage"] = None  # as OpenAI does: only the last chunk carries usage
        return ServerSentEvent(data=json.dumps(body))

    yield chunk({"role": "assistant", "content": ""})
    tally = _Tally()
    terminal: RunEventView | None = None
    async for event in follow_run(state, run.run_id):
        if event.event == "text_delta" and event.data.get("text"):
            yield chunk({"content": str(event.data["text"])})
        elif event.event == "usage":
            tally.add(event.data)
        elif event.event in ("done", "error"):
            terminal = event
    if terminal is None:
        terminal = await terminal_from_row(state, run.run_id)
    if terminal.event == "done":
        yield chunk({}, "stop", runledger=_extension(run, terminal.data, tally))
        if include_usage:
            final = {
                **base,
                "choices": [],
                "usage": tally.usage(),
                "runledger": _extension(run, terminal.data, tally),
            }
            yield ServerSentEvent(data=json.dumps(final))
    else:
        failure = _run_error(terminal.data)
        body = openai_error_body(failure.status_code, failure.code, failure.message)
        body["runledger"] = _extension(run, terminal.data, tally)
        yield ServerSentEvent(data=json.dumps(body))
    yield ServerSentEvent(data="[DONE]")


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "runledger"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


@router.get("/models", response_model=ModelList)
async def list_models(principal: UserDep, state: StateDep) -> ModelList:
    """The published graphs ``/v1/chat/completions`` runs, and their aliases (OpenAI clients list these)."""
    async with state.database.transaction() as session:
        published = await catalog.current_graphs(session)
    graph_ids = [spec.graph_id for spec in published if accepts_messages(spec)]
    aliases = [alias for alias, target in MODEL_ALIASES.items() if target in graph_ids]
    return ModelList(data=[ModelOut(id=model_id) for model_id in (*graph_ids, *aliases)])
