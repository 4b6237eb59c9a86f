"""``langgraph:poet``: one node, one model call, a short poem about a topic."""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from runledger.sdk import ChatModel


class PoetState(TypedDict, total=False):
    topic: str
    poem: str


class PoetOutput(TypedDict, total=False):
    """The run's result (the graph's output schema); the rest of the state is working memory."""

    poem: str


async def write_poem(state: PoetState) -> PoetState:
    answer = await ChatModel(max_tokens=200).ainvoke(
        [
            ("system", "You are a poet. Answer with a poem of at most eight short lines."),
            ("user", f"Write a short poem about {state['topic']}"),
        ]
    )
    return {"poem": answer.text}


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(PoetState, output_schema=PoetOutput)
    graph.add_node("write_poem", write_poem)
    graph.add_edge(START, "write_poem")
    graph.add_edge("write_poem", END)
    return graph.compile()


#: What ``runledger/graphs/langgraph.json`` serves: compiled once per process.
graph = build()
