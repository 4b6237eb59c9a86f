"""The graph catalog as data: what the API shows and validates against.

The graph *builders* live in ``graphs/``; this module holds only their public description, so the API
can list graphs and validate input without importing LangGraph or LiteLLM. A test pins that every
entry here has a builder and vice versa.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from runledger.contracts.tools import CURRENT_TIME


@dataclass(frozen=True)
class GraphSpec:
    graph_id: str
    description: str
    input_schema: dict[str, Any]
    #: Upper bound of model calls in one run: the preflight estimate multiplies it by the
    #: configured per-call estimate.
    max_model_calls: int
    #: The only tools a run of this graph may call (DENY_BY_DEFAULT_TOOLS): ids of
    #: ``contracts.tools.TOOL_CATALOG``.
    tool_ids: tuple[str, ...] = field(default_factory=tuple)


_TOPIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"topic": {"type": "string", "minLength": 1, "maxLength": 500}},
    "required": ["topic"],
    "additionalProperties": False,
}

POET = GraphSpec(
    graph_id="langgraph:poet",
    description="Writes a short poem about a topic (one model call).",
    input_schema=_TOPIC_SCHEMA,
    max_model_calls=1,
)

BRIEF = GraphSpec(
    graph_id="langgraph:brief",
    description="Outlines, drafts and then reviews a short brief on a topic (three model calls).",
    input_schema=_TOPIC_SCHEMA,
    max_model_calls=3,
)

#: A conversation, as chat front ends and OpenAI-style clients send it.
MESSAGES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "messages": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {
                "type": "object",
                "properties": {
                    "role": {"enum": ["system", "user", "assistant"]},
                    "content": {"type": "string", "maxLength": 32_000},
                },
                "required": ["role", "content"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["messages"],
    "additionalProperties": False,
}

CHAT = GraphSpec(
    graph_id="langgraph:chat",
    description="Answers a conversation of system/user/assistant messages (one model call).",
    input_schema=MESSAGES_SCHEMA,
    max_model_calls=1,
)

DATED_NOTE = GraphSpec(
    graph_id="langgraph:dated_note",
    description=(
        "Reads the current time with the core__current_time tool, then writes a short dated note on a "
        "topic (one tool call, one model call)."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "topic": {"type": "string", "minLength": 1, "maxLength": 500},
            "timezone": {"type": "string", "minLength": 1, "maxLength": 64},
        },
        "required": ["topic"],
        "additionalProperties": False,
    },
    max_model_calls=1,
    tool_ids=(CURRENT_TIME.tool_id,),
)

CATALOG: dict[str, GraphSpec] = {spec.graph_id: spec for spec in (POET, BRIEF, CHAT, DATED_NOTE)}


def accepts_messages(spec: GraphSpec) -> bool:
    """Whether a graph's input is a conversation (``{"messages": [...]}``): chat endpoints run these."""
    return "messages" in spec.input_schema.get("properties", {})


def get_graph_spec(graph_id: str) -> GraphSpec | None:
    return CATALOG.get(graph_id)


#: Characters of JSON input per extra share of the per-call estimate (about 1,000 tokens).
INPUT_CHARS_PER_SHARE = 4_000


def estimate_run_credits(spec: GraphSpec, payload: dict[str, Any], per_call_credits: int) -> int:
    """The hold a run needs before it starts: every declared model call at the per-call estimate,
    scaled up for large inputs (each call carries the input in its prompt): one more share of the
    per-call estimate per 4,000 characters of JSON input."""
    size = len(json.dumps(payload, separators=(",", ":"), sort_keys=True))
    return spec.max_model_calls * per_call_credits * (1 + size // INPUT_CHARS_PER_SHARE)
