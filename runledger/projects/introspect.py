"""What runledger reads off a loaded graph: its tools, its input schema, its output as JSON.

Contract:
- :func:`graph_tools` finds the LangChain tools a graph can run: those of every
  ``langgraph.prebuilt.ToolNode`` among its nodes (``create_react_agent``'s included) and its
  subgraphs' nodes, by name. A tool called some other way is invisible here.
- :func:`derived_input_schema` is the graph's own ``get_input_jsonschema()``, made to accept what the
  graph accepts: each LangChain message type stands for what LangGraph's ``add_messages`` coerces
  into a message (a ``{"role"|"type", "content", ...}`` object, a string, a ``[role, content]``
  pair), and ``oneOf`` reads as ``anyOf`` (pydantic renders a union it picks by a function as
  ``oneOf``, which JSON Schema refuses whenever two members match).
- :func:`json_output` makes a graph's final state JSON-safe: LangChain messages (pydantic models)
  become their ``model_dump`` dicts, anything unknown its ``str``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage
from langgraph.pregel import Pregel
from pydantic_core import to_jsonable_python

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool


def _graphs_within(graph: Pregel[Any, Any, Any, Any]) -> Iterator[Pregel[Any, Any, Any, Any]]:
    yield graph
    for _, sub in graph.get_subgraphs(recurse=True):
        if isinstance(sub, Pregel):
            yield sub


def graph_tools(graph: Pregel[Any, Any, Any, Any]) -> dict[str, BaseTool]:
    """Every tool of the graph's ``ToolNode``s (subgraphs included), by tool name."""
    # A graph holds a ToolNode only if its module was imported; not importing it otherwise spares a
    # worker of plain graphs a second of start-up (it pulls in LangChain's chat models and tools).
    tool_node = sys.modules.get("langgraph.prebuilt.tool_node")
    if tool_node is None:
        return {}
    found: dict[str, BaseTool] = {}
    for part in _graphs_within(graph):
        for node in part.nodes.values():
            bound = node.bound
            if isinstance(bound, tool_node.ToolNode):
                found.update(bound.tools_by_name)
    return found


#: A message as a run's JSON input may give it (LangChain's ``convert_to_messages`` accepts these).
MESSAGE_INPUT: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "properties": {"content": {"type": ["string", "array"]}},
            "required": ["content"],
            "anyOf": [{"required": ["role"]}, {"required": ["type"]}],
        },
        {"type": "string"},
        {
            "type": "array",
            "prefixItems": [{"type": "string"}, {"type": "string"}],
            "minItems": 2,
            "maxItems": 2,
        },
    ]
}


@functools.cache
def _message_types() -> frozenset[str]:
    import langchain_core.messages as messages

    names = (getattr(messages, name, None) for name in messages.__all__)
    return frozenset(t.__name__ for t in names if isinstance(t, type) and issubclass(t, BaseMessage))


def _any_of(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {("anyOf" if key == "oneOf" else key): _any_of(value) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_any_of(item) for item in schema]
    return schema


def derived_input_schema(graph: Pregel[Any, Any, Any, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = _any_of(graph.get_input_jsonschema())
    definitions = schema.get("$defs", {})
    for name in definitions.keys() & _message_types():
        definitions[name] = MESSAGE_INPUT
    return schema


def json_output(state: Any) -> dict[str, Any]:
    """The run's output: the graph's final value, JSON-safe (a non-dict value under ``"output"``)."""
    value = to_jsonable_python(state, fallback=str)
    return value if isinstance(value, dict) else {"output": value}
