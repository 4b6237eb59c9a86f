"""Binding a tool runner for the graph code running in the current context (as ``llm.bind`` does
for the model gateway). Unbound, :func:`call` uses a runner that denies every tool."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from runledger.tools.runner import ToolResult, ToolRunner


class Binding:
    def __init__(self, runner: ToolRunner) -> None:
        self.runner = runner
        self.counters: dict[str, int] = {}
        try:
            #: The run's event loop: a sync tool call (a sync node) runs its tool call there.
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    def next_call_id(self, scope: str) -> str:
        """``{node}:{step}.tool:{n}``: the n-th tool call graph code made in that node and LangGraph
        super-step (``call:tool:{n}`` outside a graph). With the step in it, a run resumed after
        its last checkpoint never reuses the id (and so a write tool's record) of an earlier step."""
        n = self.counters.get(scope, 0)
        self.counters[scope] = n + 1
        node, _, step = scope.partition("@")
        return f"{node}:{step}.tool:{n}" if step else f"{node}:tool:{n}"


_binding: ContextVar[Binding | None] = ContextVar("runledger_tool_binding", default=None)


@contextmanager
def bind(runner: ToolRunner) -> Iterator[None]:
    token = _binding.set(Binding(runner))
    try:
        yield
    finally:
        _binding.reset(token)


def current() -> Binding:
    """The bound runner, or (outside a run) one that denies every tool."""
    return _binding.get() or Binding(ToolRunner())


def current_scope() -> str:
    """``{node}@{step}`` of the LangGraph node running this call (``call`` outside a graph)."""
    try:
        from langgraph.config import get_config

        metadata = get_config().get("metadata", {})
    except RuntimeError:  # called outside a LangGraph run
        return "call"
    node, step = metadata.get("langgraph_node"), metadata.get("langgraph_step")
    if not node:
        return "call"
    return f"{node}@{step}" if step is not None else str(node)


async def call(tool_id: str, args: dict[str, Any] | None = None) -> ToolResult:
    """Run a tool through the bound runner. The call id, ``{node}:{step}.tool:{n}``, is stable
    across a retried execution of the same graph."""
    binding = _binding.get() or Binding(ToolRunner())
    return await binding.runner.call(tool_id, args or {}, call_id=binding.next_call_id(current_scope()))
