"""``langgraph:chat``: the whole conversation goes to one model call; its input schema bounds it."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from runledger.contracts.catalog import accepts_messages
from runledger.graphs.chat import graph as chat_graph
from runledger.llm import Invoke, LiteLLMGateway, ModelRequest, ModelResponse, bind
from runledger.llm.offline import OFFLINE_MODEL
from runledger.projects import builtin_graphs

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Name a lighthouse."},
    {"role": "assistant", "content": "The Tower of Hercules."},
    {"role": "user", "content": "Tell me about lighthouses"},
]


async def test_chat_sends_the_conversation_in_one_call_and_replies() -> None:
    requests: list[ModelRequest] = []

    class Recording:
        async def call(self, call_key: str, request: ModelRequest, invoke: Invoke) -> ModelResponse:
            requests.append(request)
            return await invoke(request, None)

    with bind(LiteLLMGateway().invoke, default_model=OFFLINE_MODEL, meter=Recording()):
        state = await chat_graph.ainvoke({"messages": CONVERSATION})
    assert len(requests) == 1
    assert requests[0].messages == tuple(CONVERSATION)
    assert isinstance(state["reply"], str)
    assert "lighthouses" in state["reply"]  # the offline model answers the last message


def test_the_chat_and_agent_graphs_take_messages() -> None:
    taking = [g.spec.graph_id for g in builtin_graphs() if accepts_messages(g.spec)]
    assert taking == ["langgraph:chat", "langgraph:agent", "langgraph:careful_agent"]


@pytest.mark.parametrize(
    ("payload", "valid"),
    [
        ({"messages": CONVERSATION}, True),
        ({"messages": [{"role": "user", "content": ""}]}, True),
        ({"messages": [{"role": "user", "content": "hi"}] * 100}, True),
        ({"messages": []}, False),
        ({"messages": [{"role": "user", "content": "hi"}] * 101}, False),
        ({"messages": [{"role": "tool", "content": "hi"}]}, False),
        ({"messages": [{"role": "user"}]}, False),
        ({"messages": [{"role": "user", "content": "hi", "name": "x"}]}, False),
        ({"messages": [{"role": "user", "content": "x" * 32_001}]}, False),
        ({"topic": "the sea"}, False),
    ],
)
def test_chat_input_schema(payload: dict[str, Any], valid: bool) -> None:
    (chat,) = [g.spec for g in builtin_graphs() if g.spec.graph_id == "langgraph:chat"]
    validator = jsonschema.Draft202012Validator(chat.input_schema)
    assert validator.is_valid(payload) is valid
