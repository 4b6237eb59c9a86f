"""What runledger reads off a loaded graph: its tools, its input schema, its output as JSON.

Contract:
- :func:`graph_tools` finds the LangChain tools a graph can run: those of every
  ``langgraph.prebuilt.ToolNode`` among its nodes (``create_react_agent``'s included) and its
  subgraphs' nodes, by name. A tool called some other way is invisible here.
- :func:`derived_input_schema` is the graph's own ``get_input_jsonschema()``, with ``oneOf`` read as
  ``anyOf``: pydantic renders a union it picks by a function (LangChain's message types) as
  ``oneOf``, which JSON Schema then refuses whenever two members match (``{"role": "user", ...}`` is
  both a ``HumanMessage`` and a ``ChatMessage``); the graph accepts any member.
- :func:`json_output` makes a graph's final state JSON-safe: LangChain messages (pydantic models)
  become their ``model_dump`` dicts, anything unknown its ``str``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.tools import BaseTool
from langgraph.prebuilt import ToolNode
from langgraph.pregel import Pregel
from pydantic_core import to_jsonable_python


def _graphs_within(graph: Pregel[Any, Any, Any, Any]) -> Iterator[Pregel[Any, Any, Any, Any]]:
    yield graph
    for _, sub in graph.get_subgraphs(recurse=True):
        if isinstance(sub, Pregel):
            yield sub


def graph_tools(graph: Pregel[Any, Any, Any, Any]) -> dict[str, BaseTool]:
    """Every tool of the graph's ``ToolNode``s (subgraphs included), by tool name."""
    found: dict[str, BaseTool] = {}
    for part in _graphs_within(graph):
        for node in part.nodes.values():
            bound = node.bound
            if isinstance(bound, ToolNode):
                found.update(bound.tools_by_name)
    return found


def _any_of(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {("anyOf" if key == "oneOf" else key): _any_of(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_any_of(item) for item in schema]
    return schema


def derived_input_schema(graph: Pregel[Any, Any, Any, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = _any_of(graph.get_input_jsonschema())
    return schema


def json_output(state: Any) -> dict[str, Any]:
    """The run's output: the graph's final value, JSON-safe (a non-dict value under ``"output"``)."""
    value = to_jsonable_python(state, fallback=str)
    return value if isinstance(value, dict) else {"output": value}
