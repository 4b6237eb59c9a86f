"""Graph projects: the graphs a worker serves, loaded from ``langgraph.json`` files (SPEC §7).

The worker builds one :class:`GraphRegistry` at start — the built-in graphs of
``runledger/graphs/langgraph.json`` and, with ``RUNLEDGER_GRAPHS_CONFIG`` / ``--graphs``, one user
project — publishes its specs to Postgres (``db.catalog``) and executes runs from it. LangGraph's
own loader rules apply (``graphs`` entries, ``dependencies``); runledger's settings sit under the
file's ``"runledger"`` key. The API never imports this package (import-linter): it reads the
published catalog.

Modules: ``settings`` (the file's shape), ``modules`` (import path, name clashes, imports),
``targets`` (graph, StateGraph or factory), ``introspect`` (tools, input schema, JSON output),
``loader`` (the whole load, versions).
"""

from runledger.projects.errors import ProjectError
from runledger.projects.introspect import graph_tools, json_output
from runledger.projects.loader import (
    BUILTIN_CONFIG,
    GraphRegistry,
    builtin_graphs,
    graph_id_of,
    load_project,
    load_registry,
)
from runledger.projects.targets import Factory, LoadedGraph

__all__ = [
    "BUILTIN_CONFIG",
    "Factory",
    "GraphRegistry",
    "LoadedGraph",
    "ProjectError",
    "builtin_graphs",
    "graph_id_of",
    "graph_tools",
    "json_output",
    "load_project",
    "load_registry",
]
