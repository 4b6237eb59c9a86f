"""Binding a gateway and a meter for the graph code running in the current context.

LangGraph runs async nodes as tasks that copy the caller's ``contextvars`` context, so a meter bound
around ``graph.ainvoke`` is the one every node sees.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

import structlog

from runledger.llm.types import ModelRequest, ModelResponse

#: Receives the text of a streaming answer as it arrives.
DeltaSink = Callable[[str], Awaitable[None]]
Invoke = Callable[[ModelRequest, DeltaSink | None], Awaitable[ModelResponse]]


class Meter(Protocol):
    """Wraps every model call of a run: decides whether the provider is asked at all (a settled
    call is answered from its record) and records the charge."""

    async def call(self, call_key: str, request: ModelRequest, invoke: Invoke) -> ModelResponse: ...


class _Unmetered:
    async def call(self, call_key: str, request: ModelRequest, invoke: Invoke) -> ModelResponse:
        return await invoke(request, None)


class _Binding:
    def __init__(self, invoke: Invoke, meter: Meter, default_model: str) -> None:
        self.invoke = invoke
        self.meter = meter
        self.default_model = default_model
        self.counters: dict[str, int] = {}

    def next_key(self, scope: str) -> str:
        """``{node}:{step}.{n}``: the n-th call of that node in that LangGraph super-step (``call:{n}``
        outside a graph). Keyed by step, a run resumed after its last checkpoint does not reuse the
        keys (and so the settled calls) of the steps it no longer runs; the node stays the part
        before the last ``:``."""
        n = self.counters.get(scope, 0)
        self.counters[scope] = n + 1
        node, _, step = scope.partition("@")
        return f"{node}:{step}.{n}" if step else f"{node}:{n}"


_binding: ContextVar[_Binding | None] = ContextVar("runledger_model_binding", default=None)


@contextmanager
def bind(invoke: Invoke, *, default_model: str, meter: Meter | None = None) -> Iterator[None]:
    token = _binding.set(_Binding(invoke, meter or _Unmetered(), default_model))
    try:
        yield
    finally:
        _binding.reset(token)


def current_call_scope() -> str:
    """``{node}@{step}``: the LangGraph node and super-step running this call, which makes call keys
    stable across retries (``call`` outside a graph)."""
    try:
        from langgraph.config import get_config

        metadata = get_config().get("metadata", {})
    except RuntimeError:  # called outside a LangGraph run
        return "call"
    node, step = metadata.get("langgraph_node"), metadata.get("langgraph_step")
    if not node:
        return "call"
    return f"{node}@{step}" if step is not None else str(node)


async def complete(
    messages: list[tuple[str, str]], *, model: str | None = None, max_tokens: int | None = None
) -> str:
    """Ask the bound model and return its text. Every call is metered by the bound meter."""
    binding = _binding.get()
    if binding is None:
        raise RuntimeError("no model gateway is bound: wrap the graph run in llm.bind(...)")
    request = ModelRequest(
        model=model or binding.default_model, messages=tuple(messages), max_tokens=max_tokens
    )
    scope = current_call_scope()
    key = binding.next_key(scope)
    node = scope.partition("@")[0]
    # Every log line of the call (the meter's model_call line included) names its graph node.
    with structlog.contextvars.bound_contextvars(node=node, call_key=key):
        response = await binding.meter.call(key, request, binding.invoke)
    return response.text
