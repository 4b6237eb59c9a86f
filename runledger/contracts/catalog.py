"""The graph catalog as data: what one published graph is, and the pure rules over it.

A ``GraphSpec`` is what the worker publishes to Postgres for each graph it serves (``db.catalog``)
and what the API reads back there: the API never imports graph code, LangGraph or LiteLLM. The
graphs themselves (built-in and a project's) are loaded by ``runledger.projects`` in the worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from runledger.contracts.money import ModelPrice, max_call_credits

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
    #: maximum cost of one call.
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


#: The preflight's allowance for a call's prompt besides the run's input (system text, templates,
#: earlier messages), in tokens.
PROMPT_TOKENS_ALLOWANCE = 1_000
#: The preflight counts the run's JSON input as one token per this many characters: fewer than the
#: ~4 of English text, so the estimate errs high.
CHARS_PER_TOKEN = 3


def estimate_run_credits(spec: GraphSpec, payload: dict[str, Any], price: ModelPrice, markup: Decimal) -> int:
    """The hold a run needs before it starts: ``max_model_calls`` calls at their maximum cost
    (``contracts.money.max_call_credits``, the per-call reservation's rule: LiteLLM's price x
    (input tokens + the default output cap)), each call's input being the run's input plus the
    prompt allowance. The exact bound of each call is reserved again before it is made."""
    return spec.max_model_calls * _call_bound(payload, price, markup)


def per_call_credits(spec: GraphSpec, estimate: int) -> int:
    """One call's share of a run's estimate: what a grant must have left for the run to begin (its
    first call at its bound; every call is then checked exactly)."""
    return estimate // max(spec.max_model_calls, 1)


def estimate_replay_credits(
    spec: GraphSpec,
    payload: dict[str, Any],
    price: ModelPrice,
    markup: Decimal,
    *,
    reused_calls: int,
    remaining: bool,
) -> int:
    """The hold of a replay that starts at a checkpoint, with the preflight's pricing: the calls the
    graph may still make after it (its declared calls less those the original made before it);
    zero when nothing runs after that checkpoint."""
    if not remaining:
        return 0
    return max(0, spec.max_model_calls - reused_calls) * _call_bound(payload, price, markup)


def _call_bound(payload: dict[str, Any], price: ModelPrice, markup: Decimal) -> int:
    size = len(json.dumps(payload, separators=(",", ":"), sort_keys=True))
    input_tokens = PROMPT_TOKENS_ALLOWANCE + -(-size // CHARS_PER_TOKEN)
    return max_call_credits(price, input_tokens=input_tokens, max_output_tokens=None, markup=markup)
