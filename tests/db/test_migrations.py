"""Alembic is the only way the schema changes: upgrade from empty works and leaves no diff."""

from __future__ import annotations

import asyncio
from typing import Any

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


async def test_0011_call_ids_adds_columns_without_rewriting_released_receipts(pg_server_url: str) -> None:
    """A receipt written before runledger owned its call ids survives the migration as it was (the
    append-only trigger would refuse any rewrite): its usage_unit_id stays the provider's id, its new
    provider_response_id is null; the mutable model_calls row gets the provider's id backfilled."""
    from alembic import command
    from sqlalchemy import text

    url = create_database(pg_server_url)
    config = alembic_config(url)
    await asyncio.to_thread(command.upgrade, config, "0011_call_ids-1")  # the revision before it
    engine = create_engine(_sync_url(url))
    try:
        with engine.begin() as conn:
            user = conn.execute(text("INSERT INTO users (name) VALUES ('old') RETURNING id")).scalar_one()
            account = conn.execute(
                text("INSERT INTO billing_accounts (owner_user_id) VALUES (:u) RETURNING id"), {"u": user}
            ).scalar_one()
            run = conn.execute(
                text(
                    "INSERT INTO graph_runs (run_id, workflow_id, graph_id, billing_account_id, run_kind,"
                    " trigger_source, requested_by, input, trace_id) VALUES (gen_random_uuid(), 'w',"
                    " 'langgraph:poet', :a, 'user_immediate', 'api', :u, '{}', 't') RETURNING run_id"
                ),
                {"a": account, "u": user},
            ).scalar_one()
            receipt = conn.execute(
                text(
                    "INSERT INTO charge_receipts (billing_account_id, run_id, attempt, usage_unit_id,"
                    " source_system, source_reference, graph_id, model, tokens_in, tokens_out, cost_usd,"
                    " markup, charged_credits) VALUES (:a, :r, 1, 'chatcmpl-old', 'litellm',"
                    " :r || '/1/chatcmpl-old', 'langgraph:poet', 'gpt-4o-mini', 1, 1, 0.000001, 2, 20)"
                    " RETURNING id"
                ),
                {"a": account, "r": run},
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO model_calls (run_id, call_key, attempt, model, request_hash, status,"
                    " usage_unit_id, receipt_id) VALUES (:r, 'poem:0', 1, 'gpt-4o-mini', 'h', 'settled',"
                    " 'chatcmpl-old', :c)"
                ),
                {"r": run, "c": receipt},
            )
        before = _receipt(engine, receipt)
        await asyncio.to_thread(command.upgrade, config, "head")
        after = _receipt(engine, receipt)
        with engine.connect() as conn:
            call = conn.execute(
                text("SELECT usage_unit_id, provider_response_id, status FROM model_calls WHERE run_id = :r"),
                {"r": run},
            ).one()
    finally:
        engine.dispose()
    assert {k: v for k, v in after.items() if k != "provider_response_id"} == before
    assert after["provider_response_id"] is None
    assert tuple(call) == ("chatcmpl-old", "chatcmpl-old", "settled")


def _receipt(engine: Any, receipt_id: str) -> dict[str, Any]:
    from sqlalchemy import text

    with engine.connect() as conn:
        return dict(
            conn.execute(text("SELECT * FROM charge_receipts WHERE id = :i"), {"i": receipt_id})
            .one()
            ._mapping
        )
