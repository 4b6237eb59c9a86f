"""Chat runs for the front-end protocols (OpenAI chat completions, AI SDK UI message streams).

A chat request is an ordinary billed API run of a graph whose input is a conversation
(``{"messages": [...]}``, see ``contracts.catalog.accepts_messages``): it starts through
``start_api_run``, so idempotency keys, the 402 preflight, the credit hold and the ledger all apply
exactly as for ``POST /api/v1/graphs/{graph_id}/runs``. The answer is read back from the run's
durable events (``api.event_stream.follow_run``), the same feed the SSE endpoint serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from api.catalog import published_graph
from api.deps import AppState
from api.errors import NotFound, Unprocessable
from api.event_stream import RunEventView
from api.run_starts import start_api_run
from api.schemas import StartRunRequest
from db import runs
from db.accounts import Principal
from db.models import GraphRun
from runledger.contracts.catalog import accepts_messages
from runledger.contracts.errors import ErrorCode

#: The chat graph, and the names OpenAI-style clients may call it by.
CHAT_GRAPH_ID = "langgraph:chat"
MODEL_ALIASES: dict[str, str] = {
    "runledger/chat": CHAT_GRAPH_ID,
    "runledger:chat": CHAT_GRAPH_ID,
    "runledger-chat": CHAT_GRAPH_ID,
}


async def chat_graph_id(state: AppState, name: str) -> str:
    """The graph a chat request names: a published graph whose input is a conversation, or an alias
    of one. Unknown → 404 ``graph_not_found``; a graph that does not take messages → 422."""
    graph_id = MODEL_ALIASES.get(name, name)
    async with state.database.transaction() as session:
        spec = await published_graph(session, graph_id)
    if not accepts_messages(spec):
        raise Unprocessable(f"graph {graph_id!r} does not take a conversation (its input has no messages)")
    return graph_id


@dataclass(frozen=True)
class Turn:
    role: str
    content: str


async def start_chat_run(
    state: AppState,
    principal: Principal,
    *,
    graph_id: str,
    messages: Sequence[Turn],
    idempotency_key: str | None,
) -> tuple[GraphRun, bool]:
    body = StartRunRequest(input={"messages": [{"role": m.role, "content": m.content} for m in messages]})
    return await start_api_run(
        database=state.database,
        temporal=state.temporal,
        settings=state.settings,
        principal=principal,
        graph_id=graph_id,
        body=body,
        idempotency_key=idempotency_key,
    )


async def terminal_from_row(state: AppState, run_id: str) -> RunEventView:
    """The terminal event rebuilt from the run row, for a finished run whose events are gone."""
    async with state.database.transaction() as session:
        run = await runs.get_run(session, run_id=run_id)
    if run is None:
        raise NotFound(f"run {run_id} not found", code=ErrorCode.RUN_NOT_FOUND)
    if run.status == "success":
        data: dict[str, Any] = {"status": run.status, "output": run.output, "cost_credits": run.cost_credits}
        return RunEventView(seq=0, event="done", data=data)
    data = {
        "status": run.status,
        "code": run.error_code,
        "message": run.error_message,
        "cost_credits": run.cost_credits,
    }
    return RunEventView(seq=0, event="error", data=data)


def reply_text(output: Any) -> str:
    """The answer of a chat run's output (``{"reply": str}``)."""
    if isinstance(output, dict):
        reply = output.get("reply")
        if isinstance(reply, str):
            return reply
    return ""


def error_code_of(data: dict[str, Any]) -> str:
    """The stable code of an ``error`` event (its status when the run recorded none)."""
    return str(data.get("code") or f"run_{data.get('status') or 'failed'}")
