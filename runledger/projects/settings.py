"""The shape of a graph project's ``langgraph.json``: LangGraph's ``graphs`` and ``dependencies``,
and runledger's own settings under the top-level ``"runledger"`` key (SPEC §7).

Contract: :func:`parse_project` turns the file's JSON object into a :class:`Project` or raises
:class:`ProjectError` with one line naming the entry at fault. Other top-level keys (``env``,
``python_version``, ``dockerfile_lines`` …) belong to LangGraph's deployment tooling and are left
alone; inside ``"runledger"`` an unknown key is refused (a typo must not silently allow nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from runledger.contracts.catalog import DEFAULT_MAX_MODEL_CALLS
from runledger.projects.errors import ProjectError

#: A graph's name becomes ``langgraph:{name}`` in URLs and grant scopes.
GRAPH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
#: A tool's provider (``ToolSpec.provider``, the ``provider`` of ``POST /api/v1/connections``).
PROVIDER = r"^[a-z0-9_]{1,40}$"
#: A connection id: a canonical UUID, lower case as the API returns it.
CONNECTION_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class GraphSettings(BaseModel):
    """``runledger.graphs.<name>``: how runledger serves one graph."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    description: str | None = Field(default=None, max_length=2_000)
    #: The preflight estimate: the run's hold is this many calls at the per-call estimate.
    max_model_calls: int = Field(default=DEFAULT_MAX_MODEL_CALLS, ge=0, le=10_000)
    #: The allowlist: no ``tools`` → no tool is allowed (DENY_BY_DEFAULT_TOOLS).
    tools: list[str] = Field(default_factory=list)
    write_tools: list[str] = Field(default_factory=list)
    approval: list[str] = Field(default_factory=list)
    #: The graph's default model (a LiteLLM model string); unset → ``RUNLEDGER_DEFAULT_MODEL``.
    model: str | None = Field(default=None, min_length=1)
    #: The JSON Schema a run's input must match; unset → the graph's own ``get_input_jsonschema()``.
    input_schema: dict[str, Any] | None = None
    #: Provider -> connection id for the graph's tools, used for runs of the connection owner's own
    #: account only; a run's start and its grant take precedence (``activities.connections``).
    connections: dict[
        Annotated[str, StringConstraints(pattern=PROVIDER)],
        Annotated[str, StringConstraints(pattern=CONNECTION_ID)],
    ] = Field(default_factory=dict, max_length=20)

    @model_validator(mode="after")
    def _listed_tools_only(self) -> GraphSettings:
        for key in ("write_tools", "approval"):
            extra = [name for name in getattr(self, key) if name not in self.tools]
            if extra:
                raise ValueError(f"{key} {extra} must also be listed in tools (the allowlist)")
        return self


class RunledgerSection(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    graphs: dict[str, GraphSettings] = Field(default_factory=dict)


@dataclass(frozen=True)
class GraphEntry:
    """One ``graphs`` entry as LangGraph reads it: ``"<module or ./file.py>:<attribute>"``."""

    name: str
    #: The entry's import string, as written (``./agent.py:graph``, ``pkg.module:make_graph``).
    path: str
    description: str | None
    settings: GraphSettings

    @property
    def module(self) -> str:
        return self.path.rsplit(":", 1)[0]

    @property
    def attribute(self) -> str:
        return self.path.rsplit(":", 1)[1]

    @property
    def is_file(self) -> bool:
        """LangGraph's rule: a ``/`` makes it a file path (relative to ``langgraph.json``)."""
        return "/" in self.module or "\\" in self.module


@dataclass(frozen=True)
class Project:
    config: Path
    graphs: tuple[GraphEntry, ...]
    #: ``dependencies`` entries that are local paths (they start with ``.``), as written.
    local_dependencies: tuple[str, ...]


def _entry(config: Path, name: str, value: Any, settings: GraphSettings) -> GraphEntry:
    where = f"graphs.{name}"
    if not GRAPH_NAME.match(name):
        raise ProjectError(config, "a graph name is 1-64 letters, digits, '-' or '_'", entry=where)
    description = None
    if isinstance(value, dict) and isinstance(value.get("path"), str):
        path = value["path"]
        description = value.get("description")
        if description is not None and not isinstance(description, str):
            raise ProjectError(config, "description must be a string", entry=where)
    elif isinstance(value, str):
        path = value
    else:
        raise ProjectError(
            config, 'must be "./file.py:attribute", "package.module:attribute" or {"path": ...}', entry=where
        )
    module, colon, attribute = path.rpartition(":")
    if not colon or not module or not attribute.isidentifier():
        raise ProjectError(
            config, f'{path!r} is not "./file.py:attribute" or "package.module:attribute"', entry=where
        )
    return GraphEntry(name=name, path=path, description=description, settings=settings)


def _settings_error(config: Path, exc: ValidationError) -> ProjectError:
    errors = exc.errors()
    first = errors[0]
    entry = ".".join(["runledger", *(str(part) for part in first["loc"])])
    problem = "unknown setting" if first["type"] == "extra_forbidden" else first["msg"]
    if len(errors) > 1:
        problem += f" (and {len(errors) - 1} more problem(s) in runledger settings)"
    return ProjectError(config, problem, entry=entry)


def parse_project(config: Path, raw: Any) -> Project:
    if not isinstance(raw, dict):
        raise ProjectError(config, "the file must hold a JSON object")
    graphs = raw.get("graphs")
    if not isinstance(graphs, dict) or not graphs:
        raise ProjectError(config, 'no graphs: add "graphs": {"agent": "./agent.py:graph"}', entry="graphs")
    dependencies = raw.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise ProjectError(config, "must be a list of strings", entry="dependencies")
    try:
        section = RunledgerSection.model_validate(raw.get("runledger", {}))
    except ValidationError as exc:
        raise _settings_error(config, exc) from None
    unknown = sorted(set(section.graphs) - set(graphs))
    if unknown:
        raise ProjectError(config, "no such graph in graphs", entry=f"runledger.graphs.{unknown[0]}")
    entries = tuple(
        _entry(config, str(name), value, section.graphs.get(str(name), GraphSettings()))
        for name, value in graphs.items()
    )
    local = tuple(dep for dep in dependencies if dep.startswith("."))
    return Project(config=config, graphs=entries, local_dependencies=local)
