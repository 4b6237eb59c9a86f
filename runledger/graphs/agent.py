"""``langgraph:agent``: a LangGraph ReAct agent (``create_react_agent``) over ``ChatModel`` with one
read tool and one write tool, served like any project's graph.

``search_notes`` only reads a fixed set of notes, so a retried run may call it again. ``save_note``
is a write tool (``effect="write"``): runledger records its result under the call's tool effect key
before the agent goes on, and hands it the key (``idempotency_key()``) as the note's id, so a
retried or resumed run never saves a note twice. Offline, the model calls the first tool
(``search_notes``) with the user's words and then answers from its result.
"""

from __future__ import annotations

import hashlib

from langgraph.prebuilt import create_react_agent

from runledger.sdk import ChatModel, idempotency_key, tool

NOTES = {
    "ledger": "Every model call is billed once, into the ledger, with a receipt.",
    "temporal": "Temporal retries an execution; settled calls and write tools are not repeated.",
    "tools": "A tool the graph's settings do not list is refused, and the model is told so.",
}


@tool
def search_notes(query: str) -> dict[str, object]:
    """Search the team's notes for a word, e.g. ledger, temporal or tools."""
    words = query.lower().split()
    found = {
        title: text for title, text in NOTES.items() if any(w in title or w in text.lower() for w in words)
    }
    return {"query": query, "notes": found}


@tool(effect="write")
def save_note(title: str, text: str) -> dict[str, object]:
    """Save a note under a title. Saving changes the world: it happens once per tool call."""
    note_id = hashlib.sha256(idempotency_key().encode()).hexdigest()[:12]
    return {"saved": True, "note_id": note_id, "title": title, "characters": len(text)}


graph = create_react_agent(
    ChatModel(max_tokens=300),
    tools=[search_notes, save_note],
    prompt="You answer questions from the team's notes. Search them first; save a note only when asked.",
)
