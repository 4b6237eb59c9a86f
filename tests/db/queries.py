"""Read-only SQL the tests use to check what the product wrote."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from db.session import Database


async def scalar(database: Database, sql: str, **params: Any) -> Any:
    async with database.transaction() as session:
        return (await session.execute(text(sql), params)).scalar_one()


async def rows(database: Database, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with database.transaction() as session:
        return [dict(r) for r in (await session.execute(text(sql), params)).mappings()]


async def count_runs(database: Database, account: str) -> int:
    return int(
        await scalar(database, "SELECT count(*) FROM graph_runs WHERE billing_account_id = :a", a=account)
    )
