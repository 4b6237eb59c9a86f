"""LangChain tools under the runner: every execution of a graph's tool passes the bound
:class:`~runledger.tools.ToolRunner` (allowlist, argument validation, events, a span, exactly-once
effects for write tools).

Contract:
- :class:`RunledgerTool` (made by ``runledger.sdk.tool``) is a ``StructuredTool`` that routes each of
  its executions through the runner itself, however it is called: by a ``ToolNode``, by
  ``create_react_agent``, or directly by graph code.
- :func:`guard_graph` puts every other tool of the graph's ``ToolNode``\\s (subgraphs included)
  behind a :class:`GuardedTool`, a proxy that does the same; the execute activity calls it on the
  graph of each run before it runs (idempotent). A plain LangChain tool that graph code calls
  outside a ``ToolNode`` is not seen here (README).
- Called with a tool call (a ``ToolNode``), a refused or failed call returns an error ``ToolMessage``
  (``status="error"``, content ``"Error: <code>: <message>"``): the model reads it and the agent goes
  on. Called with plain arguments, it raises :class:`ToolCallRefused` (a ``ToolException``).
- The call id is the model's tool-call id, else the call's ordinal in its node and step
  (``{node}:{step}.tool:{n}``).
  A write tool's result is recorded as what the call returned (a ``ToolMessage``'s content,
  artifact and status, or the plain value as JSON), and a replayed call returns the same.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextvars import ContextVar
from typing import Any, Literal

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.errors import GraphBubbleUp
from pydantic_core import to_jsonable_python

from runledger.contracts.tools import ToolEffect, ToolErrorCode, ToolSpec
from runledger.tools import context

Effect = Literal["read", "write"]
#: The tool whose real execution the runner started in this context: LangChain runs a sync tool's
#: ``ainvoke`` as its ``invoke`` in a thread, which must then execute instead of routing again.
_executing: ContextVar[int | None] = ContextVar("runledger_executing_tool", default=None)
#: Runs the tool for real: ``(input, config) -> output``.
_Invoke = Callable[[Any, RunnableConfig | None], Awaitable[Any]]


class ToolCallRefused(ToolException):
    """A tool call graph code made directly was refused or failed (the runner's stable code)."""

    def __init__(self, code: ToolErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code


def _parameters(tool: BaseTool) -> dict[str, Any]:
    """The JSON schema the model is shown for the tool (injected arguments excluded)."""
    parameters: dict[str, Any] = convert_to_openai_tool(tool)["function"].get("parameters") or {}
    return parameters


def _arguments(input: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    raw = input.get("args", {}) if _is_tool_call(input) else input
    properties = parameters.get("properties", {})
    if isinstance(raw, dict):
        # Injected arguments (state, store, runtime) are not the model's and not JSON.
        return {k: v for k, v in raw.items() if k in properties}
    if len(properties) == 1:
        return {next(iter(properties)): raw}
    return {"input": raw}


def _is_tool_call(input: Any) -> bool:
    return isinstance(input, dict) and input.get("type") == "tool_call" and "args" in input


def _record(output: Any) -> Any:
    if isinstance(output, ToolMessage):
        return {
            "tool_message": {
                "content": to_jsonable_python(output.content, fallback=str),
                "artifact": to_jsonable_python(output.artifact, fallback=str),
                "status": output.status,
            }
        }
    return {"output": to_jsonable_python(output, fallback=str)}


def _from_record(value: Any, input: Any, name: str) -> Any:
    if isinstance(value, dict) and "tool_message" in value:
        message = value["tool_message"]
        call_id = input.get("id") if _is_tool_call(input) else None
        return ToolMessage(
            content=message["content"],
            artifact=message.get("artifact"),
            status=message.get("status", "success"),
            tool_call_id=call_id or "",
            name=name,
        )
    return value.get("output") if isinstance(value, dict) else value


async def run_guarded(
    tool: BaseTool, input: Any, config: RunnableConfig | None, *, effect: Effect | None, invoke: _Invoke
) -> Any:
    """Run one execution of ``tool`` through the bound runner (see the module contract)."""
    binding = context.current()
    parameters = _parameters(tool)
    args = _arguments(input, parameters)
    tool_call_id = input.get("id") if _is_tool_call(input) else None
    call_id = str(tool_call_id) if tool_call_id else binding.next_call_id(context.current_scope())
    write = effect == "write"
    spec = ToolSpec(
        tool_id=tool.name,
        description=tool.description,
        effect=ToolEffect.EXTERNAL_SIDE_EFFECT if write else ToolEffect.READ_ONLY,
        input_schema=parameters,
        output_schema={},
    )
    outputs: list[Any] = []

    async def execute(effect_key: str) -> Any:
        token = _executing.set(id(tool))
        try:
            output = await invoke(input, config)
        finally:
            _executing.reset(token)
        outputs.append(output)
        return _record(output)

    result = await binding.runner.run(spec, args, call_id=call_id, execute=execute, write=write)
    if not result.ok:
        assert result.error_code is not None
        if tool_call_id is None:
            raise ToolCallRefused(result.error_code, result.message or "")
        return ToolMessage(
            content=f"Error: {result.error_code.value}: {result.message}",
            tool_call_id=str(tool_call_id),
            name=tool.name,
            status="error",
        )
    if outputs and not result.replayed:
        return outputs[0]  # what the tool returned (a Command stays a Command)
    return _from_record(result.value, input, tool.name)


def _on_run_loop(coro: Awaitable[Any]) -> Any:
    """Run a tool call of a sync caller (a sync node, in a worker thread) on the run's loop."""
    loop = context.current().loop
    if loop is None:
        raise RuntimeError("no runledger run is bound: a tool call outside a run is denied")
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RuntimeError("a tool's sync invoke blocks the run's loop: use `await tool.ainvoke(...)`")
    done: Future[Any] = Future()
    ctx = contextvars.copy_context()

    async def run() -> Any:
        return await coro

    def start() -> None:
        task = loop.create_task(run(), context=ctx)
        task.add_done_callback(
            lambda t: (
                done.set_exception(t.exception() or RuntimeError("cancelled"))
                if t.cancelled() or t.exception()
                else done.set_result(t.result())
            )
        )

    loop.call_soon_threadsafe(start)
    return done.result()


class RunledgerTool(StructuredTool):
    """A LangChain ``StructuredTool`` whose every execution passes the runner (``sdk.tool``)."""

    effect: Effect = "read"

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        if _executing.get() == id(self):
            return await StructuredTool.ainvoke(self, input, config, **kwargs)

        async def invoke(inner_input: Any, inner_config: RunnableConfig | None) -> Any:
            return await StructuredTool.ainvoke(self, inner_input, inner_config, **kwargs)

        return await run_guarded(self, input, config, effect=self.effect, invoke=invoke)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        if _executing.get() == id(self):
            return StructuredTool.invoke(self, input, config, **kwargs)
        return _on_run_loop(self.ainvoke(input, config, **kwargs))


class GuardedTool(BaseTool):
    """A proxy that puts a graph's plain LangChain tool behind the runner (:func:`guard_graph`)."""

    inner: BaseTool

    @classmethod
    def of(cls, inner: BaseTool) -> GuardedTool:
        return cls(
            name=inner.name,
            description=inner.description,
            args_schema=inner.args_schema,
            return_direct=inner.return_direct,
            inner=inner,
        )

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        async def invoke(inner_input: Any, inner_config: RunnableConfig | None) -> Any:
            return await self.inner.ainvoke(inner_input, inner_config, **kwargs)

        return await run_guarded(self.inner, input, config, effect=None, invoke=invoke)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return _on_run_loop(self.ainvoke(input, config, **kwargs))

    def _run(self, *args: Any, **kwargs: Any) -> Any:  # never reached: invoke/ainvoke route
        raise NotImplementedError


def guard_graph(graph: Any) -> None:
    """Put every plain tool of the graph's ``ToolNode``s behind the runner (idempotent)."""
    # A graph holds a ToolNode only if its module was imported (as runledger.projects reads tools).
    tool_node = sys.modules.get("langgraph.prebuilt.tool_node")
    if tool_node is None:
        return
    parts = [graph, *(sub for _, sub in graph.get_subgraphs(recurse=True))]
    for part in parts:
        for node in getattr(part, "nodes", {}).values():
            bound = getattr(node, "bound", None)
            if isinstance(bound, tool_node.ToolNode):
                tools = bound.tools_by_name
                for name, tool in list(tools.items()):
                    if not isinstance(tool, RunledgerTool | GuardedTool):
                        tools[name] = GuardedTool.of(tool)


#: LangGraph's interrupts pass through the runner untouched (they are control flow, not failures).
PASSTHROUGH: tuple[type[BaseException], ...] = (GraphBubbleUp,)
