"""Writing small graph projects into a temp dir: plain StateGraph nodes, no model call."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

#: A graph that uses the project's own tools.py, config.py and utils.py (names runledger once had at
#: the top level) and returns a LangChain message, so its output must be made JSON-safe.
ECHO_FILES: dict[str, str] = {
    "tools.py": """
        def shout(text: str) -> str:
            return text.upper() + "!"
    """,
    "config.py": """
        GREETING = "hello"
    """,
    "utils.py": """
        def join(*parts: str) -> str:
            return " ".join(parts)
    """,
    "graph.py": """
        from langchain_core.messages import AIMessage
        from langgraph.graph import END, START, StateGraph
        from typing_extensions import TypedDict

        import utils
        from config import GREETING
        from tools import shout


        class State(TypedDict, total=False):
            text: str
            reply: str
            messages: list


        def respond(state: State) -> State:
            reply = utils.join(GREETING, shout(state["text"]))
            return {"reply": reply, "messages": [AIMessage(content=reply)]}


        builder = StateGraph(State)
        builder.add_node("respond", respond)
        builder.add_edge(START, "respond")
        builder.add_edge("respond", END)
        graph = builder.compile()
    """,
}

ECHO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string", "minLength": 1}},
    "required": ["text"],
    "additionalProperties": False,
}


def write_files(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def write_project(root: Path, files: dict[str, str], config: dict[str, Any] | str) -> Path:
    """The project's files and its ``langgraph.json`` (a dict, or raw text for broken JSON)."""
    root.mkdir(parents=True, exist_ok=True)
    write_files(root, files)
    path = root / "langgraph.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config, indent=2))
    return path


def echo_project(root: Path, **settings: Any) -> Path:
    """The echo graph as ``langgraph:echo`` with a strict input schema and these settings."""
    return write_project(
        root,
        ECHO_FILES,
        {
            "dependencies": ["."],
            "graphs": {"echo": "./graph.py:graph"},
            "runledger": {"graphs": {"echo": {"input_schema": ECHO_SCHEMA, **settings}}},
        },
    )
