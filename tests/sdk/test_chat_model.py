"""``runledger.sdk.ChatModel`` is a LangChain chat model: every call is one metered call (a meter
bound as the execute activity binds one), as full OpenAI-format requests, with tool calls, streaming
(LangGraph's ``messages`` mode included), structured output and usage. The provider is the fake one,
reached through LiteLLM over HTTP; the meter here only records (billing is tested end to end)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import create_react_agent
from pydantic import BaseModel

from runledger.llm import DeltaSink, Invoke, LiteLLMGateway, ModelRequest, ModelResponse, bind
from runledger.llm.offline import OFFLINE_MODEL
from runledger.sdk import ChatModel
from tests.fakes.openai_server import FakeProvider

MODEL = "openai/gpt-4o-mini"


class Recording:
    """A meter that records each call and the text it streamed into the run's events."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.requests: list[ModelRequest] = []
        self.deltas: list[str] = []

    async def call(self, call_key: str, request: ModelRequest, invoke: Invoke) -> ModelResponse:
        self.keys.append(call_key)
        self.requests.append(request)

        async def sink(delta: str) -> None:
            self.deltas.append(delta)

        sink_: DeltaSink = sink
        return await invoke(request, sink_)


@contextmanager
def metered(provider: FakeProvider, model: str = MODEL) -> Iterator[Recording]:
    meter = Recording()
    gateway = LiteLLMGateway(api_base=provider.url, api_key="sk-fake")
    with bind(gateway.invoke, default_model=model, meter=meter):
        yield meter


@tool
def lookup_order(order_id: str) -> dict[str, str]:
    """Look an order up by its id."""
    return {"order_id": order_id, "status": "delivered"}


async def test_ainvoke_is_one_metered_call_with_usage(fake_provider: FakeProvider) -> None:
    with metered(fake_provider) as meter:
        answer = await ChatModel(max_tokens=50, temperature=0.2).ainvoke("three little words")
    assert isinstance(answer, AIMessage)
    assert answer.text.startswith("A fake answer to: three little words")
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["output_tokens"] > 0
    assert answer.response_metadata["provider_response_id"] in fake_provider.log.ids()
    (request,) = meter.requests
    assert (request.model, request.max_tokens, request.temperature) == (MODEL, 50, 0.2)
    assert request.messages == ({"role": "user", "content": "three little words"},)
    assert "".join(meter.deltas) == answer.text  # the run's text_delta events get the text
    last = fake_provider.log.completions[-1]["request"]
    assert (last["max_tokens"], last["temperature"]) == (50, 0.2)


async def test_any_litellm_model_string_and_the_bound_default(fake_provider: FakeProvider) -> None:
    with metered(fake_provider, model=OFFLINE_MODEL) as meter:
        await ChatModel().ainvoke("hi")
        await ChatModel(model=MODEL).ainvoke("hi")
    assert [r.model for r in meter.requests] == [OFFLINE_MODEL, MODEL]


async def test_bind_tools_returns_tool_calls_and_sends_tool_results(fake_provider: FakeProvider) -> None:
    model = ChatModel().bind_tools([lookup_order])
    with metered(fake_provider) as meter:
        first = await model.ainvoke([HumanMessage("Where is order A-1001?")])
        assert isinstance(first, AIMessage)
        (call,) = first.tool_calls
        assert call["name"] == "lookup_order"
        assert call["args"] == {"order_id": "A-1001"}
        result = ToolMessage(json.dumps({"status": "delivered"}), tool_call_id=call["id"] or "")
        second = await model.ainvoke([HumanMessage("Where is order A-1001?"), first, result])
    assert second.text.startswith("A fake answer to:")
    sent = meter.requests[1]
    assert sent.tools
    assert sent.tools[0]["function"]["name"] == "lookup_order"
    assert sent.messages[1]["role"] == "assistant"
    assert sent.messages[1]["tool_calls"][0]["id"] == call["id"]
    assert sent.messages[2] == {
        "role": "tool",
        "tool_call_id": call["id"],
        "content": '{"status": "delivered"}',
    }


async def test_astream_streams_text_and_tool_call_chunks(fake_provider: FakeProvider) -> None:
    with metered(fake_provider):
        pieces = [c async for c in ChatModel().astream("one two three four")]
        tool_pieces = [c async for c in ChatModel().bind_tools([lookup_order]).astream("order A-7")]
    assert len([p for p in pieces if p.content]) > 1  # token by token, not one blob
    whole = pieces[0]
    for piece in pieces[1:]:
        whole = whole + piece
    assert isinstance(whole, AIMessageChunk)
    assert whole.text.startswith("A fake answer to: one two three four")
    assert whole.usage_metadata is not None
    assert whole.usage_metadata["total_tokens"] > 0
    chunks = [p for p in tool_pieces if isinstance(p, AIMessageChunk)]
    assert len([p for p in chunks if p.tool_call_chunks]) >= 2  # the call arrives in pieces
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    assert isinstance(merged, AIMessageChunk)
    assert merged.tool_calls[0]["name"] == "lookup_order"
    assert merged.tool_calls[0]["args"] == {"order_id": "A-7"}


async def test_langgraph_messages_stream_mode_gets_the_tokens(fake_provider: FakeProvider) -> None:
    async def respond(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await ChatModel().ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(START, "respond")
    builder.add_edge("respond", END)
    graph = builder.compile()
    with metered(fake_provider) as meter:
        streamed: list[Any] = [
            (chunk, meta)
            async for chunk, meta in graph.astream(
                {"messages": [HumanMessage("stream me some words")]}, stream_mode="messages"
            )
        ]
    texts = [chunk.content for chunk, _ in streamed if chunk.content]
    assert len(texts) > 1
    assert "".join(str(t) for t in texts).startswith("A fake answer to: stream me some words")
    assert {meta["langgraph_node"] for _, meta in streamed} == {"respond"}
    assert meter.keys == ["respond:1.0"]


class Verdict(BaseModel):
    order_id: str
    refund: bool


async def test_with_structured_output(fake_provider: FakeProvider) -> None:
    with metered(fake_provider) as meter:
        verdict = await ChatModel().with_structured_output(Verdict).ainvoke("Order B-42 arrived broken")
    assert verdict == Verdict(order_id="B-42", refund=True)
    assert meter.requests[0].tool_choice == "required"


async def test_sync_invoke_from_a_sync_node(fake_provider: FakeProvider) -> None:
    def respond(state: MessagesState) -> dict[str, Any]:
        return {"messages": [ChatModel().invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("respond", respond)
    builder.add_edge(START, "respond")
    builder.add_edge("respond", END)
    with metered(fake_provider) as meter:
        state = await builder.compile().ainvoke({"messages": [HumanMessage("sync please")]})
    assert state["messages"][-1].text.startswith("A fake answer to: sync please")
    assert meter.keys == ["respond:1.0"]


async def test_react_agent_runs_offline_tool_call_then_text() -> None:
    meter = Recording()
    with bind(LiteLLMGateway().invoke, default_model=OFFLINE_MODEL, meter=meter):
        state = await create_react_agent(ChatModel(), tools=[lookup_order]).ainvoke(
            {"messages": [("user", "Where is order A-1001?")]}
        )
    kinds = [type(m).__name__ for m in state["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert state["messages"][1].tool_calls[0]["args"] == {"order_id": "A-1001"}
    assert meter.keys == ["agent:1.0", "agent:3.0"]


@pytest.mark.parametrize("choice", ["lookup_order", "any", True])
async def test_tool_choice_spellings(fake_provider: FakeProvider, choice: Any) -> None:
    with metered(fake_provider) as meter:
        await ChatModel().bind_tools([lookup_order], tool_choice=choice).ainvoke("order C-1")
    assert meter.requests[0].tool_choice in (
        "required",
        {"type": "function", "function": {"name": "lookup_order"}},
    )
