"""What a ``graphs`` entry may point at, and how a run gets its graph from it.

Contract (LangGraph's loader rules):
- a compiled graph (any ``Pregel``): served as is;
- an uncompiled ``StateGraph``: compiled once, at load;
- a factory — a callable taking a ``RunnableConfig`` (or nothing) and returning a graph, an
  awaitable of one, or a (async) context manager yielding one: called once at start, with an empty
  config, for the catalog (schema and tools), and then **once per run** with the run's config, as
  LangGraph Platform does. The context is exited when the run's execution ends.
Anything else is "not a graph". Compiled graphs are compiled once per process, never per run.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from runledger.contracts.catalog import GraphSpec

Graph = Pregel[Any, Any, Any, Any]


class NotAGraphError(TypeError):
    """A factory returned (or an entry is) something that is not a graph."""


def as_graph(value: Any, what: str) -> Graph:
    if isinstance(value, Pregel):
        return value
    if isinstance(value, StateGraph):
        compiled: Graph = value.compile()
        return compiled
    raise NotAGraphError(f"{what} is a {type(value).__name__}, not a compiled graph or a StateGraph")


@dataclass(frozen=True)
class Factory:
    make: Callable[..., Any]
    takes_config: bool

    @asynccontextmanager
    async def open(self, config: RunnableConfig) -> AsyncIterator[Graph]:
        made = self.make(config) if self.takes_config else self.make()
        if inspect.isawaitable(made):
            made = await made
        if isinstance(made, Pregel | StateGraph):
            yield as_graph(made, "the factory's result")
        elif hasattr(made, "__aenter__") and hasattr(made, "__aexit__"):
            async with made as value:
                yield as_graph(value, "the factory's context value")
        elif hasattr(made, "__enter__") and hasattr(made, "__exit__"):
            with made as value:
                yield as_graph(value, "the factory's context value")
        else:
            yield as_graph(made, "the factory's result")


def classify(value: Any, what: str) -> Graph | Factory:
    """A graph compiled now, or a factory; ``NotAGraphError`` for anything else."""
    if isinstance(value, Pregel | StateGraph):
        return as_graph(value, what)
    if callable(value):
        try:
            parameters = list(inspect.signature(value).parameters.values())
        except (TypeError, ValueError):
            parameters = []
        positional = [
            p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
        required = [
            p for p in parameters if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if len(required) > 1 or any(p.kind == p.KEYWORD_ONLY for p in required):
            raise NotAGraphError(
                f"{what} is a function of {len(required)} required arguments; a graph factory takes "
                "one RunnableConfig (or nothing)"
            )
        return Factory(make=value, takes_config=bool(positional))
    raise NotAGraphError(
        f"{what} is a {type(value).__name__}, not a compiled graph, a StateGraph or a factory"
    )


@dataclass(frozen=True)
class LoadedGraph:
    """One served graph: its published spec and how a run gets it."""

    spec: GraphSpec
    target: Graph | Factory
    #: Provider -> connection id from the graph's settings (ids only; the worker uses one only for
    #: runs of the account that owns it, and a run's start or grant takes precedence).
    connections: tuple[tuple[str, str], ...] = ()

    @property
    def is_factory(self) -> bool:
        return isinstance(self.target, Factory)

    @asynccontextmanager
    async def open(self, config: RunnableConfig) -> AsyncIterator[Graph]:
        """The graph a run executes: the compiled one, or the factory's for this run's config."""
        if isinstance(self.target, Factory):
            async with self.target.open(config) as graph:
                yield graph
        else:
            yield self.target
