"""The graph catalog as the API sees it: what the workers published to Postgres (``db.catalog``).

Contract: the API knows a graph only from its published ``GraphSpec`` — its existence, input
schema, tools and estimate — and never imports graph code, LangGraph or a user's project
(import-linter forbids it). An unknown graph is 404 ``graph_not_found``; input that does not match
the published schema is 422 with the schema's own error, before anything is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jsonschema
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import NotFound, Unprocessable
from db import catalog
from db.session import Database
from runledger.contracts.catalog import GraphSpec
from runledger.contracts.errors import ErrorCode
from runledger.contracts.money import ModelPrice


def graph_not_found(graph_id: str) -> NotFound:
    return NotFound(f"graph {graph_id!r} does not exist", code=ErrorCode.GRAPH_NOT_FOUND)


async def published_graph(session: AsyncSession, graph_id: str) -> GraphSpec:
    """The graph's current published spec; 404 when no worker serves it."""
    spec = await catalog.current_graph(session, graph_id)
    if spec is None:
        raise graph_not_found(graph_id)
    return spec


async def published_graph_priced(database: Database, graph_id: str) -> tuple[GraphSpec, ModelPrice | None]:
    """The graph's current published spec and its model's published price (None before a worker
    published it), in one statement outside any transaction (a run start's first read); 404 when
    no worker serves the graph."""
    found = await database.single_statement(lambda conn: catalog.current_graph_priced(conn, graph_id))
    if found is None:
        raise graph_not_found(graph_id)
    return found


async def published_graphs(session: AsyncSession, graph_ids: Iterable[str]) -> dict[str, GraphSpec]:
    """The published specs of these graphs, by id (an unpublished one is absent)."""
    found: dict[str, GraphSpec] = {}
    for graph_id in set(graph_ids):
        spec = await catalog.current_graph(session, graph_id)
        if spec is not None:
            found[graph_id] = spec
    return found


def validate_input(spec: GraphSpec, payload: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(spec.input_schema)
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    if errors:
        detail = "; ".join(
            f"input{''.join(f'.{p}' for p in err.absolute_path)}: {err.message}" for err in errors
        )
        raise Unprocessable(detail)
