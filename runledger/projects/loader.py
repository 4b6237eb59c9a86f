"""Loading graph projects into the worker's registry: the built-in graphs and, when configured,
one user project, each graph checked completely before any is served.

Contract:
- :func:`load_registry` returns every graph the worker serves, by graph id (``langgraph:{name}``):
  the built-in ones (``runledger/graphs/langgraph.json``, source ``builtin``, loaded once per
  process) and the project's (source: the path of its ``langgraph.json``). It raises
  :class:`ProjectError` (one line naming the file and the entry) for the first problem it meets —
  file missing, bad JSON, path or attribute not found, import error, not a graph, a name of a
  built-in graph, a tool in the allowlist the graph does not have, an unknown setting, a module name
  clash — and then nothing is served: a catalog is never partly registered.
- A factory is called once here, with an empty config, for the catalog's schema and tools.
- A graph's tools are its ToolNodes' tools (:func:`graph_tools`) and runledger's own tools
  (``contracts.tools.TOOL_CATALOG``, which any graph reaches through ``runledger.tools.call``).
- ``version`` is a hash of the graph's published fields, its entry and every ``.py`` file of its
  project (:func:`~runledger.projects.modules.source_files`): change any of them, get a new version.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
from collections.abc import Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import jsonschema
from langchain_core.runnables import RunnableConfig

from runledger.contracts.catalog import BUILTIN_SOURCE, GraphSpec
from runledger.contracts.tools import TOOL_CATALOG
from runledger.projects.errors import ProjectError
from runledger.projects.introspect import derived_input_schema, graph_tools
from runledger.projects.modules import (
    add_to_path,
    check_module_names,
    import_entry,
    import_roots,
    source_files,
)
from runledger.projects.settings import GraphEntry, Project, parse_project
from runledger.projects.targets import Factory, Graph, LoadedGraph, NotAGraphError, classify

log = logging.getLogger("runledger.projects")

BUILTIN_CONFIG = Path(__file__).resolve().parents[1] / "graphs" / "langgraph.json"
PROVIDER = "langgraph"
#: The config a factory is called with once at start, for the catalog.
CATALOG_CONFIG: RunnableConfig = {"configurable": {}}
#: The input schema of a graph whose own cannot be derived (and that sets none).
ANY_OBJECT: dict[str, Any] = {"type": "object"}


def graph_id_of(name: str) -> str:
    return f"{PROVIDER}:{name}"


@dataclass(frozen=True)
class GraphRegistry:
    """The graphs one worker serves, built once at start."""

    graphs: Mapping[str, LoadedGraph]
    #: The project's ``langgraph.json``; None when only the built-in graphs are served.
    project: Path | None = None

    def get(self, graph_id: str) -> LoadedGraph | None:
        return self.graphs.get(graph_id)

    def __iter__(self) -> Iterator[LoadedGraph]:
        return iter(self.graphs.values())

    @property
    def specs(self) -> list[GraphSpec]:
        return [loaded.spec for loaded in self.graphs.values()]


def read_config(config: Path) -> Any:
    try:
        text = config.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError(config, "no such file") from None
    except IsADirectoryError:
        raise ProjectError(config, "is a folder; name its langgraph.json") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(config, f"cannot be read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProjectError(config, f"not valid JSON: {exc}") from None


def _run(factory: Factory, entry: GraphEntry, config: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Call the factory once (in a loop of its own: this runs before or beside the worker's) and
    read its graph's tools and input schema while its context is open."""

    async def catalog() -> tuple[dict[str, Any], dict[str, Any] | None]:
        async with factory.open(CATALOG_CONFIG) as graph:
            return _introspect(graph, entry, config)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(catalog())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, catalog()).result()


def _introspect(
    graph: Graph, entry: GraphEntry, config: Path
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    tools: dict[str, Any] = dict(graph_tools(graph))
    if entry.settings.input_schema is not None:
        return tools, None
    try:
        return tools, derived_input_schema(graph)
    except Exception as exc:
        # e.g. pydantic refuses typing.TypedDict before Python 3.12; the graph still runs.
        log.warning(
            "%s: graphs.%s: no input schema could be derived (%s: %s); any JSON object is accepted "
            "until runledger.graphs.%s.input_schema is set",
            config,
            entry.name,
            type(exc).__name__,
            exc,
            entry.name,
        )
        return tools, ANY_OBJECT


def _prepare(
    project: Project, roots: tuple[Path, ...], entry: GraphEntry, *, builtin: bool
) -> tuple[GraphEntry, Graph | Factory, dict[str, Any]]:
    where = f"graphs.{entry.name}"
    module = import_entry(project, roots, entry, own_packages_allowed=builtin)
    if entry.attribute not in vars(module):
        raise ProjectError(
            project.config, f"{entry.module} has no attribute {entry.attribute!r}", entry=where
        )
    try:
        target = classify(vars(module)[entry.attribute], entry.path)
    except NotAGraphError as exc:
        raise ProjectError(project.config, str(exc), entry=where) from None
    except Exception as exc:
        raise ProjectError(
            project.config, f"compiling {entry.path} failed: {type(exc).__name__}: {exc}", entry=where
        ) from exc
    if isinstance(target, Factory):
        try:
            tools, schema = _run(target, entry, project.config)
        except NotAGraphError as exc:
            raise ProjectError(project.config, f"{entry.path}: {exc}", entry=where) from None
        except Exception as exc:
            raise ProjectError(
                project.config,
                f"calling the factory {entry.path} failed: {type(exc).__name__}: {exc}",
                entry=where,
            ) from exc
    else:
        tools, schema = _introspect(target, entry, project.config)
    settings = entry.settings
    available = set(tools) | set(TOOL_CATALOG)
    for name in settings.tools:
        if name not in available:
            raise ProjectError(
                project.config,
                f"{name!r} is not a tool of the graph (its tools: {', '.join(sorted(tools)) or 'none'})",
                entry=f"runledger.graphs.{entry.name}.tools",
            )
    input_schema = settings.input_schema if settings.input_schema is not None else schema
    assert input_schema is not None
    try:
        jsonschema.Draft202012Validator.check_schema(input_schema)
    except jsonschema.SchemaError as exc:
        raise ProjectError(
            project.config,
            f"not a valid JSON Schema: {exc.message}",
            entry=f"runledger.graphs.{entry.name}.input_schema",
        ) from None
    return entry, target, input_schema


def _unique(names: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _version(spec: GraphSpec, entry: GraphEntry, files: Mapping[str, str]) -> str:
    published: dict[str, Any] = {k: v for k, v in dataclasses.asdict(spec).items() if k != "version"}
    if entry.settings.connections:  # absent, a graph's version is what it always was
        published["connections"] = dict(entry.settings.connections)
    canonical = json.dumps(
        {"graph": published, "entry": entry.path, "files": dict(files)},
        sort_keys=True,
        separators=(",", ":"),
        default=list,
    )
    return sha256(canonical.encode()).hexdigest()[:16]


def _file_digests(project: Project, source_roots: tuple[Path, ...]) -> dict[str, str]:
    base = project.config.parent
    digests: dict[str, str] = {}
    for file in source_files(source_roots):
        key = str(file.relative_to(base)) if file.is_relative_to(base) else str(file)
        digests[key] = sha256(file.read_bytes()).hexdigest()
    return digests


def load_project(
    config: Path, *, builtin: bool = False, taken: Collection[str] = ()
) -> tuple[LoadedGraph, ...]:
    """Every graph of one ``langgraph.json``, checked; ``taken``: graph ids already served."""
    config = config.expanduser().resolve()
    project = parse_project(config, read_config(config))
    for entry in project.graphs:
        if graph_id_of(entry.name) in taken:
            raise ProjectError(
                config,
                f"{graph_id_of(entry.name)} is a built-in graph; give this graph another name",
                entry=f"graphs.{entry.name}",
            )
    # The built-in graphs live in our own package: nothing goes on the import path for them.
    roots = () if builtin else import_roots(project)
    check_module_names(project, roots)
    add_to_path(roots)
    prepared = [_prepare(project, roots, entry, builtin=builtin) for entry in project.graphs]
    files = _file_digests(project, roots or (config.parent,))
    source = BUILTIN_SOURCE if builtin else str(config)
    loaded = []
    for entry, target, input_schema in prepared:
        settings = entry.settings
        spec = GraphSpec(
            graph_id=graph_id_of(entry.name),
            description=settings.description or entry.description or "",
            input_schema=input_schema,
            max_model_calls=settings.max_model_calls,
            tool_ids=_unique(settings.tools),
            write_tools=_unique(settings.write_tools),
            approval_tools=_unique(settings.approval),
            model=settings.model,
            source=source,
        )
        spec = dataclasses.replace(spec, version=_version(spec, entry, files))
        connections = tuple(sorted(settings.connections.items()))
        loaded.append(LoadedGraph(spec=spec, target=target, connections=connections))
    return tuple(loaded)


@functools.cache
def builtin_graphs() -> tuple[LoadedGraph, ...]:
    return load_project(BUILTIN_CONFIG, builtin=True)


def load_registry(project: Path | None = None) -> GraphRegistry:
    """The built-in graphs and, given a ``langgraph.json``, its project's (see the contract)."""
    graphs = {loaded.spec.graph_id: loaded for loaded in builtin_graphs()}
    if project is not None:
        for loaded in load_project(project, taken=graphs):
            graphs[loaded.spec.graph_id] = loaded
    return GraphRegistry(graphs=graphs, project=None if project is None else project.expanduser().resolve())
