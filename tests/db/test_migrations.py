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


async def test_SECRETS_ENCRYPTED_AT_REST_migration_encrypts_existing_plain_webhook_secrets(
    pg_server_url: str,
) -> None:
    """A database from before 0008 holds plain-text webhook secrets: upgrading encrypts each under
    the newest key and drops the plain column; downgrading gives them back."""
    import psycopg

    from db.secrets import SecretBox
    from tests.helpers import SECRET_KEYS

    url = create_database(pg_server_url)
    await asyncio.to_thread(upgrade, url, "0006_graph_catalog")
    plain = "whsec_" + "plain-text-secret-from-before"
    with psycopg.connect(url, autocommit=True) as conn:
        user = conn.execute("INSERT INTO users (name) VALUES ('old') RETURNING id").fetchone()
        assert user is not None
        account = conn.execute(
            "INSERT INTO billing_accounts (owner_user_id) VALUES (%s) RETURNING id", (user[0],)
        ).fetchone()
        assert account is not None
        grant = conn.execute(
            "INSERT INTO execution_grants (user_id, billing_account_id, scopes) VALUES (%s, %s, %s) RETURNING id",
            (user[0], account[0], ["graph:execute:*"]),
        ).fetchone()
        assert grant is not None
        conn.execute(
            "INSERT INTO webhook_triggers (owner_user_id, billing_account_id, grant_id, owns_grant, source, "
            "graph_id, input, input_mapping, secret) VALUES (%s, %s, %s, false, 'old-source', "
            "'langgraph:poet', '{}', '{}', %s)",
            (user[0], account[0], grant[0], plain),
        )
    await asyncio.to_thread(upgrade, url, "head", secret_keys=SECRET_KEYS)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT * FROM webhook_triggers").fetchone()
        columns = [c.name for c in conn.execute("SELECT * FROM webhook_triggers LIMIT 0").description or []]
    assert row is not None
    stored = dict(zip(columns, row, strict=True))
    assert "secret" not in stored
    assert plain not in repr(row)
    assert stored["kind"] == "standard"
    newest = SECRET_KEYS.split(",")[0]
    assert SecretBox([newest]).decrypt(stored["secret_encrypted"]) == plain

    from alembic import command

    config = alembic_config(url, SECRET_KEYS)
    await asyncio.to_thread(command.downgrade, config, "0006_graph_catalog")
    with psycopg.connect(url, autocommit=True) as conn:
        back = conn.execute("SELECT secret FROM webhook_triggers").fetchone()
    assert back == (plain,)
