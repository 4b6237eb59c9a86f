"""Alembic is the only way the schema changes: upgrade from empty works and leaves no diff."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from db.base import CHECKPOINT_TABLES, Base, include_name
from db.migrate import alembic_config, upgrade
from db.session import async_url
from tests.conftest import create_database


def _sync_url(url: str) -> str:
    return async_url(url)  # psycopg 3 serves both sync and async engines


async def test_upgrade_from_empty_then_autogenerate_diff_is_empty(pg_server_url: str) -> None:
    url = create_database(pg_server_url)
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(_sync_url(url))
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name}),
                Base.metadata,
            )
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert diff == []
    assert {
        "users",
        "api_keys",
        "billing_accounts",
        "credit_ledger",
        "charge_receipts",
        "graph_runs",
        "run_start_requests",
        "model_calls",
        "charge_conflicts",
        "alembic_version",
        *CHECKPOINT_TABLES,
    } <= tables


async def test_downgrade_to_base_and_up_again(pg_server_url: str) -> None:
    from alembic import command

    url = create_database(pg_server_url)
    config = alembic_config(url)
    await asyncio.to_thread(command.upgrade, config, "head")
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "head")
