"""Graph builders: plain LangGraph ``StateGraph``s, keyed by the graph ids of ``contracts.catalog``.

Contract: graph code calls models only through ``llm.complete`` and tools only through
``tools.call``, and knows nothing of billing, Temporal or the database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from runledger.graphs import brief, chat, dated_note, poet

GraphBuilder = Callable[[], CompiledStateGraph[Any, Any, Any, Any]]

GRAPHS: dict[str, GraphBuilder] = {
    "langgraph:poet": poet.build,
    "langgraph:brief": brief.build,
    "langgraph:chat": chat.build,
    "langgraph:dated_note": dated_note.build,
}

#: The state keys a graph's result is made of (the rest of the state is working memory).
OUTPUT_KEYS: dict[str, tuple[str, ...]] = {
    "langgraph:poet": poet.OUTPUT_KEYS,
    "langgraph:brief": brief.OUTPUT_KEYS,
    "langgraph:chat": chat.OUTPUT_KEYS,
    "langgraph:dated_note": dated_note.OUTPUT_KEYS,
}
