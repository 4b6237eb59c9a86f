"""``langgraph:dated_note``: reads the clock with the ``core__current_time`` tool, then one model call
writes a short note on a topic, dated with that time.

The graph's only tool is the one its catalog entry declares. If the tool is refused or fails, the
note is written undated: a tool result is data for the graph, never a crash.
"""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from runledger import tools
from runledger.contracts.tools import CURRENT_TIME
from runledger.sdk import ChatModel


class DatedNoteState(TypedDict, total=False):
    topic: str
    timezone: str
    written_at: str | None
    note: str


class DatedNoteOutput(TypedDict, total=False):
    """The run's result (the graph's output schema); the rest of the state is working memory."""

    note: str
    written_at: str | None


async def read_clock(state: DatedNoteState) -> DatedNoteState:
    args = {"timezone": state["timezone"]} if state.get("timezone") else {}
    result = await tools.call(CURRENT_TIME.tool_id, args)
    if not result.ok or result.value is None:
        return {"written_at": None}
    return {"written_at": result.value["local"] or result.value["utc"]}


async def write_note(state: DatedNoteState) -> DatedNoteState:
    dated = f" It is {state['written_at']}." if state.get("written_at") else ""
    answer = await ChatModel(max_tokens=200).ainvoke(
        [
            ("system", "Write a note of at most three sentences. Mention the date if you are given it."),
            ("user", f"Write a short note about {state['topic']}.{dated}"),
        ]
    )
    return {"note": answer.text}


def build() -> CompiledStateGraph[Any, Any, Any, Any]:
    graph = StateGraph(DatedNoteState, output_schema=DatedNoteOutput)
    graph.add_node("read_clock", read_clock)
    graph.add_node("write_note", write_note)
    graph.add_edge(START, "read_clock")
    graph.add_edge("read_clock", "write_note")
    graph.add_edge("write_note", END)
    return graph.compile()


#: What ``runledger/graphs/langgraph.json`` serves: compiled once per process.
graph = build()
