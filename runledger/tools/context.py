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
        n = self.counters.get(scope, 0)
        self.counters[scope] = n + 1
        return f"{scope}:tool:{n}"


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


def current_node() -> str:
    try:
        from langgraph.config import get_config

        node = get_config().get("metadata", {}).get("langgraph_node")
    except RuntimeError:  # called outside a LangGraph run
        node = None
    return str(node) if node else "call"


async def call(tool_id: str, args: dict[str, Any] | None = None) -> ToolResult:
    """Run a tool through the bound runner. The call id, ``{node}:tool:{n}``, is stable across a
    retried execution of the same graph."""
    binding = _binding.get() or Binding(ToolRunner())
    return await binding.runner.call(tool_id, args or {}, call_id=binding.next_call_id(current_node()))
