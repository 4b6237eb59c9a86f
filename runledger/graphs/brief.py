"""``langgraph:brief``: outline → draft → review, three model calls that build on each other."""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from runledger.sdk import ChatModel


class BriefState(TypedDict, total=False):
    topic: str
    outline: str
    draft: str
    review: str


class BriefOutput(TypedDict, total=False):
    """The run's result (the graph's output schema); the rest of the state is working memory."""

    outline: str
    draft: str
    review: str


async def outline(state: BriefState) -> BriefState:
    answer = await ChatModel(max_tokens=200).ainvoke(
        [
            ("system", "Outline a one-page brief in three bullet points."),
            ("user", f"Topic: {state['topic']}"),
        ]
    )
    return {"outline": answer.text}


async def draft(state: BriefState) -> BriefState:
    answer = await ChatModel(max_tokens=400).ainvoke(
        [
            ("system", "Write a short brief that follows the outline."),
            ("user", f"Topic: {state['topic']}\nOutline:\n{state['outline']}"),
        ]
    )
    return {"draft": answer.text}


async def review(state: BriefState) -> BriefState:
    answer = await ChatModel(max_tokens=150).ainvoke(
        [("system", "Review the brief in two sentences: one strength, one fix."), ("user", state["draft"])]
    )
    return {"review": answer.text}


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(BriefState, output_schema=BriefOutput)
    graph.add_node("outline", outline)
    graph.add_node("draft", draft)
    graph.add_node("review", review)
    graph.add_edge(START, "outline")
    graph.add_edge("outline", "draft")
    graph.add_edge("draft", "review")
    graph.add_edge("review", END)
    return graph.compile()


#: What ``runledger/graphs/langgraph.json`` serves: compiled once per process.
graph = build()
