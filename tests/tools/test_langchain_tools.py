"""LangChain tools under the runner, in process (the offline model, an in-memory effect store): a
ToolNode's tools are guarded, a write tool is replayed from its record under the model's tool-call
id (EXACTLY_ONCE_TOOL_EFFECTS), a tool not allowed gets the model an error ToolMessage
(DENY_BY_DEFAULT_TOOLS), and a direct call of an sdk tool outside a run is refused."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool as plain_tool
from langgraph.prebuilt import create_react_agent

from runledger import tools
from runledger.llm import Invoke, LiteLLMGateway, ModelRequest, ModelResponse, bind
from runledger.llm.offline import OFFLINE_MODEL
from runledger.sdk import ChatModel, ToolCallRefused, tool
from runledger.tools.langchain import PASSTHROUGH, guard_graph

executed: list[str] = []


@plain_tool
def cancel_order(order_id: str) -> dict[str, str]:
    """Cancel an order."""
    executed.append(order_id)
    return {"cancelled": order_id}


@tool(effect="write")
def refund(order_id: str) -> str:
    """Refund an order."""
    return f"refunded {order_id}"


class Memory:
    def __init__(self) -> None:
        self.records: dict[str, Any] = {}

    async def recorded(self, effect_key: str) -> Any | None:
        return {"value": self.records[effect_key]} if effect_key in self.records else None

    async def record(self, effect_key: str, *, tool_id: str, args: dict[str, Any], value: Any) -> Any:
        return self.records.setdefault(effect_key, value)


class Unmetered:
    async def call(self, call_key: str, request: ModelRequest, invoke: Invoke) -> ModelResponse:
        return await invoke(request, None)


async def _run(allowed: frozenset[str], effects: Memory, events: list[tuple[str, dict[str, Any]]]) -> Any:
    async def emit(event: str, data: dict[str, Any]) -> None:
        events.append((event, data))

    graph = create_react_agent(ChatModel(), tools=[cancel_order])
    guard_graph(graph)
    runner = tools.ToolRunner(
        policy=tools.AllowList(allowed),
        emit=emit,
        run_id="run-1",
        write_tools=frozenset({"cancel_order"}),
        effects=effects,
        passthrough=PASSTHROUGH,
    )
    with bind(LiteLLMGateway().invoke, default_model=OFFLINE_MODEL, meter=Unmetered()), tools.bind(runner):
        return await graph.ainvoke({"messages": [("user", "Cancel order A-7")]})


async def test_EXACTLY_ONCE_TOOL_EFFECTS_a_tool_node_write_tool_replays_from_its_record() -> None:
    executed.clear()
    effects = Memory()
    first_events: list[tuple[str, dict[str, Any]]] = []
    again_events: list[tuple[str, dict[str, Any]]] = []
    first = await _run(frozenset({"cancel_order"}), effects, first_events)
    again = await _run(frozenset({"cancel_order"}), effects, again_events)  # the retried execution
    assert executed == ["A-7"]  # the tool ran once
    (call_id,) = [m.tool_calls[0]["id"] for m in first["messages"] if getattr(m, "tool_calls", None)]
    assert list(effects.records) == [f"run-1/{call_id}"]
    first_tool = [m for m in first["messages"] if isinstance(m, ToolMessage)]
    again_tool = [m for m in again["messages"] if isinstance(m, ToolMessage)]
    assert [m.content for m in again_tool] == [m.content for m in first_tool]
    assert [e for e, _ in first_events] == ["tool_call_start", "tool_call_result"]
    assert [(e, d.get("replayed")) for e, d in again_events] == [("tool_call_result", True)]


async def test_DENY_BY_DEFAULT_TOOLS_a_tool_node_tool_not_allowed_is_an_error_message() -> None:
    executed.clear()
    events: list[tuple[str, dict[str, Any]]] = []
    state = await _run(frozenset(), Memory(), events)
    assert executed == []
    (message,) = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert message.status == "error"
    assert "tool_policy_denied" in str(message.content)
    assert state["messages"][-1].type == "ai"  # the agent went on
    assert [(e, d["error_code"]) for e, d in events] == [("tool_call_result", "tool_policy_denied")]


async def test_an_sdk_tool_called_outside_a_run_is_refused() -> None:
    with pytest.raises(ToolCallRefused, match="tool_policy_denied"):
        await refund.ainvoke({"order_id": "A-1"})
