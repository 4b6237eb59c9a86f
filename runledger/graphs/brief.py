"""``langgraph:brief``: outline → draft → review, three model calls that build on each other."""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from runledger import llm


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
    text = await llm.complete(
        [
            ("system", "Outline a one-page brief in three bullet points."),
            ("user", f"Topic: {state['topic']}"),
        ],
        max_tokens=200,
    )
    return {"outline": text}


async def draft(state: BriefState) -> BriefState:
    text = await llm.complete(
        [
            ("system", "Write a short brief that follows the outline."),
            ("user", f"Topic: {state['topic']}\nOutline:\n{state['outline']}"),
        ],
        max_tokens=400,
    )
    return {"draft": text}


async def review(state: BriefState) -> BriefState:
    text = await llm.complete(
        [("system", "Review the brief in two sentences: one strength, one fix."), ("user", state["draft"])],
        max_tokens=150,
    )
    return {"review": text}


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
