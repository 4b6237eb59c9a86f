"""The graph catalog as data: what one published graph is, and the pure rules over it.

A ``GraphSpec`` is what the worker publishes to Postgres for each graph it serves (``db.catalog``)
and what the API reads back there: the API never imports graph code, LangGraph or LiteLLM. The
graphs themselves (built-in and a project's) are loaded by ``runledger.projects`` in the worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: The source of the graphs that ship with runledger (``runledger/graphs/langgraph.json``).
BUILTIN_SOURCE = "builtin"

#: Preflight estimate of a graph that does not declare ``max_model_calls``: room for a ReAct agent's
#: few tool rounds. It sizes the credit hold only; it does not stop a run that makes more calls.
DEFAULT_MAX_MODEL_CALLS = 10


@dataclass(frozen=True)
class GraphSpec:
    graph_id: str
    description: str
    input_schema: dict[str, Any]
    #: Upper bound of model calls in one run: the preflight estimate multiplies it by the
    #: configured per-call estimate.
    max_model_calls: int
    #: The only tools a run of this graph may call (DENY_BY_DEFAULT_TOOLS).
    tool_ids: tuple[str, ...] = field(default_factory=tuple)
    #: Allowed tools whose effects must happen once (EXACTLY_ONCE_TOOL_EFFECTS).
    write_tools: tuple[str, ...] = field(default_factory=tuple)
    #: Allowed tools that need a human's yes before they run.
    approval_tools: tuple[str, ...] = field(default_factory=tuple)
    #: The graph's default model; None: the worker's ``RUNLEDGER_DEFAULT_MODEL``.
    model: str | None = None
    #: Hash of the graph's source files and settings: what a run executed (``graph_runs.graph_version``).
    version: str = ""
    #: ``builtin``, or the path of the project's ``langgraph.json``.
    source: str = BUILTIN_SOURCE


def accepts_messages(spec: GraphSpec) -> bool:
    """Whether a graph's input is a conversation (``{"messages": [...]}``): chat endpoints run these."""
    return "messages" in spec.input_schema.get("properties", {})


#: Characters of JSON input per extra share of the per-call estimate (about 1,000 tokens).
INPUT_CHARS_PER_SHARE = 4_000


def estimate_replay_credits(
    spec: GraphSpec, payload: dict[str, Any], per_call_credits: int, *, reused_calls: int, remaining: bool
) -> int:
    """The hold of a replay that starts at a checkpoint: the preflight's pricing for the calls the
    graph may still make after it (its declared calls less those the original made before it); zero
    when nothing runs after that checkpoint."""
    if not remaining:
        return 0
    left = max(0, spec.max_model_calls - reused_calls)
    size = len(json.dumps(payload, separators=(",", ":"), sort_keys=True))
    return left * per_call_credits * (1 + size // INPUT_CHARS_PER_SHARE)


def estimate_run_credits(spec: GraphSpec, payload: dict[str, Any], per_call_credits: int) -> int:
    """The hold a run needs before it starts: every declared model call at the per-call estimate,
    scaled up for large inputs (each call carries the input in its prompt): one more share of the
    per-call estimate per 4,000 characters of JSON input."""
    size = len(json.dumps(payload, separators=(",", ":"), sort_keys=True))
    return spec.max_model_calls * per_call_credits * (1 + size // INPUT_CHARS_PER_SHARE)
