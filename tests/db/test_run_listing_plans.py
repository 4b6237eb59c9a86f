"""``GET /runs`` stays an index walk as the table grows: with 20,000 runs of two accounts in a
database of its own (analyzed), the plan of every listing the API and the dashboard run for one
account — each order, a status filter, the next page's keyset — reads ``graph_runs`` through an
index, never a sequential scan, and stops at the page's limit. (Its p50 with 10k runs in the table
is measured in ``bench.latency_bench --scale``.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql

from db import runs
from db.migrate import upgrade
from db.session import Database
from tests.conftest import create_database

RUNS_PER_ACCOUNT = 10_000
PAGE = 50

_SEED = """
WITH u AS (INSERT INTO users (name) VALUES ('plan-a'), ('plan-b') RETURNING id),
     a AS (INSERT INTO billing_accounts (owner_user_id) SELECT id FROM u RETURNING id, owner_user_id)
INSERT INTO graph_runs (run_id, workflow_id, graph_id, billing_account_id, run_kind, trigger_source,
                        requested_by, input, trace_id, status, cost_credits, created_at)
SELECT r.id, 'graph-run:' || r.id, 'langgraph:poet', a.id, 'user_immediate', 'api', a.owner_user_id,
       '{}'::jsonb, md5(r.id::text), CASE WHEN g %% 10 = 0 THEN 'error' ELSE 'success' END, g %% 997,
       now() - g * interval '1 second'
FROM a, generate_series(1, %(n)s) AS g, LATERAL (SELECT CAST(md5(a.id::text || g) AS uuid) AS id) r
RETURNING billing_account_id
"""


@pytest.fixture
async def seeded(pg_server_url: str) -> AsyncIterator[tuple[Database, str]]:
    url = create_database(pg_server_url)
    await asyncio.to_thread(upgrade, url)
    database = Database(url, pool_size=2)
    try:

        async def seed(conn: Any) -> str:
            cursor = await conn.execute(_SEED, {"n": RUNS_PER_ACCOUNT})
            account = str((await cursor.fetchone())[0])
            await conn.execute("ANALYZE graph_runs")
            return account

        yield database, await database.single_statement(seed)
    finally:
        await database.dispose()


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _plan(database: Database, stmt: Any) -> dict[str, Any]:
    compiled = stmt.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]

    async def explain(conn: Any) -> Any:
        cursor = await conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + str(compiled), dict(compiled.params))
        return (await cursor.fetchone())[0]

    found = await database.single_statement(explain)
    return dict((json.loads(found) if isinstance(found, str) else found)[0]["Plan"])


@pytest.mark.parametrize("order", runs.RUN_ORDERS)
@pytest.mark.parametrize("status", [None, "error"])
async def test_every_listing_of_one_account_is_an_index_walk_that_stops_at_its_page(
    seeded: tuple[Database, str], order: runs.RunOrder, status: str | None
) -> None:
    database, account = seeded
    first = runs.list_runs_query(
        billing_account_id=account, filters=runs.RunFilters(status=status), limit=PAGE, order=order
    )
    async with database.autocommit() as session:
        page = list((await session.execute(first)).scalars())
    assert len(page) == PAGE
    last = page[-1]
    key = last.created_at if order.startswith("created") else last.cost_credits
    following = runs.list_runs_query(
        billing_account_id=account,
        filters=runs.RunFilters(status=status),
        limit=PAGE,
        order=order,
        before=(key, last.run_id),
    )
    for stmt in (first, following):
        plan = await _plan(database, stmt)
        nodes = list(_nodes(plan))
        scans = [n for n in nodes if n.get("Relation Name") == "graph_runs"]
        assert scans, plan
        assert all(n["Node Type"] != "Seq Scan" for n in scans), (order, status, plan)
        # The account's index on the order's key yields the page in order and stops after it (a
        # status filter reads past the rows it drops: one in ten here).
        index = (
            "ix_graph_runs_account_created" if order.startswith("created") else "ix_graph_runs_account_cost"
        )
        assert any(n.get("Index Name") == index for n in scans), plan
        assert not [n for n in nodes if n["Node Type"] == "Sort"], plan
        rows_read = sum(int(n.get("Actual Rows", 0)) * int(n.get("Actual Loops", 1)) for n in scans)
        assert rows_read <= PAGE + 1, (rows_read, plan)
    assert datetime.now(UTC) > last.created_at
