"""``langgraph:chat``: one node, one model call that answers a conversation.

Input ``{"messages": [{"role": "system" | "user" | "assistant", "content": str}, ...]}`` (validated
against the catalog's JSON schema before the run starts); output ``{"reply": str}``. This is the graph
behind the OpenAI-compatible ``/v1/chat/completions`` endpoint and the AI SDK chat route.
"""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from runledger.sdk import ChatModel

#: Room for a chat-sized answer; the preflight hold is sized per call, not per token.
MAX_REPLY_TOKENS = 1024


class ChatMessage(TypedDict):
    role: str
    content: str


class ChatState(TypedDict, total=False):
    messages: list[ChatMessage]
    reply: str


class ChatOutput(TypedDict, total=False):
    """The run's result (the graph's output schema); the rest of the state is working memory."""

    reply: str


async def respond(state: ChatState) -> ChatState:
    conversation = [{"role": m["role"], "content": m["content"]} for m in state["messages"]]
    answer = await ChatModel(max_tokens=MAX_REPLY_TOKENS).ainvoke(conversation)
    return {"reply": answer.text}


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(ChatState, output_schema=ChatOutput)
    graph.add_node("respond", respond)
    graph.add_edge(START, "respond")
    graph.add_edge("respond", END)
    return graph.compile()


#: What ``runledger/graphs/langgraph.json`` serves: compiled once per process.
graph = build()
