"""The published graph catalog: what each worker serves, read by the API (SPEC §7).

Contract:
- :func:`publish` is called by a worker at start with every graph it serves. In one transaction,
  serialized against other publishers: each version is recorded once in ``graph_versions`` (kept
  for good), each graph's current row in ``graph_catalog`` points at it, and graphs the worker no
  longer serves leave the current catalog. So the catalog is what the most recently started worker
  serves: the workers of one task queue must serve the same project.
- :func:`current_graphs` / :func:`current_graph` read the current catalog; :func:`graph_version`
  one published version (what a run executed); :func:`current_graph_priced` one current graph with
  its model's published price, in one statement for the run-start path (raw psycopg, autocommit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Select, delete, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.catalog_models import CatalogEntry, GraphVersion
from db.prices import WORKER_DEFAULT
from runledger.contracts.catalog import GraphSpec
from runledger.contracts.money import ModelPrice


@dataclass(frozen=True)
class Published:
    graph_id: str
    version: str
    #: False when this version was already the current one.
    changed: bool


def _spec(row: GraphVersion | Any) -> GraphSpec:
    """The spec of a ``graph_versions`` row (an ORM object, or a named tuple of its columns)."""
    return GraphSpec(
        graph_id=row.graph_id,
        description=row.description,
        input_schema=row.input_schema,
        max_model_calls=row.max_model_calls,
        tool_ids=tuple(row.tool_ids),
        write_tools=tuple(row.write_tools),
        approval_tools=tuple(row.approval_tools),
        model=row.model,
        version=row.version,
        source=row.source,
    )


async def publish(session: AsyncSession, specs: Sequence[GraphSpec]) -> list[Published]:
    # Two workers starting at once must not interleave their catalogs.
    await session.execute(text("LOCK TABLE graph_catalog IN SHARE ROW EXCLUSIVE MODE"))
    if specs:
        await session.execute(
            insert(GraphVersion)
            .values(
                [
                    dict(
                        graph_id=s.graph_id,
                        version=s.version,
                        source=s.source,
                        description=s.description,
                        input_schema=s.input_schema,
                        tool_ids=list(s.tool_ids),
                        write_tools=list(s.write_tools),
                        approval_tools=list(s.approval_tools),
                        max_model_calls=s.max_model_calls,
                        model=s.model,
                    )
                    for s in specs
                ]
            )
            .on_conflict_do_nothing()
        )
    rows = await session.execute(select(CatalogEntry.graph_id, CatalogEntry.version))
    before = {row.graph_id: row.version for row in rows}
    served = [s.graph_id for s in specs]
    await session.execute(delete(CatalogEntry).where(CatalogEntry.graph_id.not_in(served)))
    published = []
    for s in specs:
        changed = before.get(s.graph_id) != s.version
        if changed:
            statement = insert(CatalogEntry).values(graph_id=s.graph_id, version=s.version)
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[CatalogEntry.graph_id],
                    set_={"version": statement.excluded.version, "published_at": func.now()},
                )
            )
        published.append(Published(graph_id=s.graph_id, version=s.version, changed=changed))
    return published


def _current() -> Select[GraphVersion]:
    return select(GraphVersion).join(
        CatalogEntry,
        tuple_(CatalogEntry.graph_id, CatalogEntry.version)
        == tuple_(GraphVersion.graph_id, GraphVersion.version),
    )


async def current_graphs(session: AsyncSession) -> list[GraphSpec]:
    rows = (await session.execute(_current().order_by(GraphVersion.graph_id))).scalars().all()
    return [_spec(row) for row in rows]


async def current_graph(session: AsyncSession, graph_id: str) -> GraphSpec | None:
    row = (await session.execute(_current().where(CatalogEntry.graph_id == graph_id))).scalar_one_or_none()
    return None if row is None else _spec(row)


#: A current graph and its model's price (the workers' default model's when it names none).
_PRICED_SQL = """
SELECT v.graph_id, v.description, v.input_schema, v.max_model_calls, v.tool_ids, v.write_tools,
       v.approval_tools, v.model, v.version, v.source, p.input_usd_per_token, p.output_usd_per_token
FROM graph_catalog c
JOIN graph_versions v ON v.graph_id = c.graph_id AND v.version = c.version
LEFT JOIN model_prices p ON p.model = coalesce(v.model, %(default)s)
WHERE c.graph_id = %(graph_id)s
"""


async def current_graph_priced(
    conn: psycopg.AsyncConnection[Any], graph_id: str
) -> tuple[GraphSpec, ModelPrice | None] | None:
    """The current spec of ``graph_id`` and its model's published price (None before any worker
    published it); None when no worker serves the graph."""
    cursor = conn.cursor(row_factory=namedtuple_row)
    row: Any = await (
        await cursor.execute(_PRICED_SQL, {"graph_id": graph_id, "default": WORKER_DEFAULT})
    ).fetchone()
    if row is None:
        return None
    price = (
        None
        if row.input_usd_per_token is None
        else ModelPrice(
            input_usd_per_token=row.input_usd_per_token, output_usd_per_token=row.output_usd_per_token
        )
    )
    return _spec(row), price


async def graph_version(session: AsyncSession, graph_id: str, version: str) -> GraphSpec | None:
    row = await session.get(GraphVersion, (graph_id, version))
    return None if row is None else _spec(row)
