"""The ledger writer on a real Postgres: duplicate deliveries, conflicts, append-only facts."""

from __future__ import annotations

import asyncio
import functools
import re
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from db import ledger, ledger_reads
from db.models import ModelCall
from db.session import STATEMENT_POOL_NAME, Database
from runledger.contracts import ids
from tests.db.builders import insert_run
from tests.db.queries import rows, scalar
from tests.helpers import create_user

ROOT = Path(__file__).resolve().parents[2]


def _charge(account: str, run_id: str, unit: str, credits: int = 120) -> ledger.Charge:
    return ledger.Charge(
        billing_account_id=account,
        run_id=run_id,
        attempt=1,
        usage_unit_id=unit,
        source_system="litellm",
        source_reference=ids.charge_source_reference(run_id=run_id, attempt=1, usage_unit_id=unit),
        graph_id="langgraph:poet",
        model="gpt-4o-mini",
        provider="openai",
        tokens_in=10,
        tokens_out=20,
        cost_usd=Decimal("0.000006"),
        markup=Decimal(2),
        charged_credits=credits,
    )


async def test_IDEMPOTENT_CHARGES_duplicate_write_is_one_row(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=10_000)
    run_id = await insert_run(database, user.billing_account_id, user.user_id)
    charge = _charge(user.billing_account_id, run_id, "call-1")

    async def write() -> ledger.ChargeOutcome:
        async with database.transaction() as session:
            return await ledger.record_charge(session, charge=charge)

    outcomes = await asyncio.gather(*(write() for _ in range(10)))
    assert sum(o.created for o in outcomes) == 1
    assert len({o.receipt_id for o in outcomes}) == 1
    assert not any(o.conflict for o in outcomes)
    assert await scalar(database, "SELECT count(*) FROM charge_receipts WHERE run_id = :r", r=run_id) == 1
    assert await scalar(database, "SELECT count(*) FROM credit_ledger WHERE run_id = :r", r=run_id) == 1
    async with database.transaction() as session:
        assert await ledger.get_balance(session, billing_account_id=user.billing_account_id) == 10_000 - 120
        assert (
            await ledger_reads.ledger_sum(session, billing_account_id=user.billing_account_id) == 10_000 - 120
        )


async def test_IDEMPOTENT_CHARGES_same_reference_other_amount_is_recorded_not_applied(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=10_000)
    run_id = await insert_run(database, user.billing_account_id, user.user_id)
    async with database.transaction() as session:
        first = await ledger.record_charge(session, charge=_charge(user.billing_account_id, run_id, "u", 120))
    async with database.transaction() as session:
        second = await ledger.record_charge(
            session, charge=_charge(user.billing_account_id, run_id, "u", 999)
        )
    assert first.created
    assert not second.created
    assert second.conflict
    assert second.receipt_id == first.receipt_id
    conflict = await scalar(
        database,
        "SELECT attempted_credits FROM charge_conflicts WHERE existing_receipt_id = :r",
        r=first.receipt_id,
    )
    assert conflict == 999
    async with database.transaction() as session:
        assert await ledger.get_balance(session, billing_account_id=user.billing_account_id) == 10_000 - 120


async def test_receipts_and_ledger_are_append_only(api: httpx.AsyncClient, database: Database) -> None:
    user = await create_user(api, credits=10_000)
    run_id = await insert_run(database, user.billing_account_id, user.user_id)
    async with database.transaction() as session:
        await ledger.record_charge(session, charge=_charge(user.billing_account_id, run_id, "u"))
    for statement in (
        "UPDATE charge_receipts SET charged_credits = 0 WHERE run_id = :r",
        "DELETE FROM charge_receipts WHERE run_id = :r",
        "UPDATE credit_ledger SET amount = 0 WHERE run_id = :r",
        "DELETE FROM credit_ledger WHERE run_id = :r",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.transaction() as session:
                await session.execute(text(statement), {"r": run_id})


async def test_MONOTONIC_RUN_STATUS_enforced_in_sql(api: httpx.AsyncClient, database: Database) -> None:
    user = await create_user(api)
    run_id = await insert_run(database, user.billing_account_id, user.user_id)

    async def set_status(status: str) -> None:
        async with database.transaction() as session:
            await session.execute(
                text("UPDATE graph_runs SET status = :s WHERE run_id = :r"), {"s": status, "r": run_id}
            )

    with pytest.raises(DBAPIError, match="illegal run status transition pending -> success"):
        await set_status("success")
    await set_status("running")
    await set_status("paused")
    await set_status("running")
    await set_status("success")
    for later in ("running", "error", "pending", "cancelled"):
        with pytest.raises(DBAPIError, match="illegal run status transition success"):
            await set_status(later)


def test_ONE_LEDGER_WRITER_only_db_ledger_writes_money_tables() -> None:
    """No module but db/ledger.py constructs or mutates receipts, ledger rows or balances."""
    pattern = re.compile(
        r"(insert|update|delete)\((ChargeReceipt|CreditLedgerEntry|BillingAccount)\)"
        r"|ChargeReceipt\(|CreditLedgerEntry\(|values\(\s*balance_credits"
        r"|insert\s+into\s+(charge_receipts|credit_ledger)|update\s+billing_accounts",
        re.IGNORECASE,
    )
    offenders = []
    for package in ("api", "activities", "workflows", "runledger", "db"):
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ("db/ledger.py", "db/models.py") or "/migrations/" in rel:
                continue
            if pattern.search(path.read_text()):
                offenders.append(rel)
    assert offenders == []


async def _pending_call(
    database: Database, run_id: str, call_key: str, *, usage_unit_id: str | None = None
) -> str:
    """A call recorded ``pending``, as the meter's reservation records it (without its hold)."""
    call = ModelCall(
        run_id=run_id,
        call_key=call_key,
        attempt=1,
        model="gpt-4o-mini",
        request_hash="h",
        usage_unit_id=usage_unit_id or f"unit-{call_key}",
        reserved_credits=0,
    )
    async with database.transaction() as session:
        session.add(call)
        await session.flush()
        return call.id


def _settlement(call_id: str, call_key: str) -> ledger.CallSettlement:
    return ledger.CallSettlement(
        call_id=call_id,
        response={"text": "a poem", "provider_response_id": call_key},
        usage_event={"call_key": call_key, "credits": 120},
    )


async def test_ONE_LEDGER_WRITER_the_charge_statement_settles_its_call_and_reports_usage(
    api: httpx.AsyncClient, database: Database
) -> None:
    """The meter's path: one autocommit statement writes receipt, debit, call settlement and usage
    event together; a plain re-delivery is answered by the same statement without writing."""
    user = await create_user(api, credits=10_000)
    run_id = await insert_run(database, user.billing_account_id, user.user_id)
    call_id = await _pending_call(database, run_id, "poem:0")
    charge, call = _charge(user.billing_account_id, run_id, "u-1"), _settlement(call_id, "poem:0")

    first = await database.single_statement(functools.partial(ledger.charge_once, charge=charge, call=call))
    assert first is not None
    assert first.created
    assert first.balance_after == 10_000 - 120
    settled = await rows(
        database,
        "SELECT status, receipt_id::text AS receipt_id, response FROM model_calls WHERE id = :c",
        c=call_id,
    )
    assert settled == [{"status": "settled", "receipt_id": first.receipt_id, "response": call.response}]
    usage = await rows(
        database, "SELECT data FROM run_events WHERE run_id = :r AND event = 'usage'", r=run_id
    )
    assert [u["data"] for u in usage] == [
        {"call_key": "poem:0", "credits": 120, "balance_after": 10_000 - 120}
    ]

    again = await database.single_statement(functools.partial(ledger.charge_once, charge=charge, call=call))
    assert again == ledger.ChargeOutcome(receipt_id=first.receipt_id, created=False)
    # Another amount under the same reference: the statement leaves it to record_charge, which
    # records the conflict and applies nothing.
    dearer = _charge(user.billing_account_id, run_id, "u-1", credits=999)
    assert (
        await database.single_statement(functools.partial(ledger.charge_once, charge=dearer, call=call))
        is None
    )
    async with database.transaction() as session:
        conflict = await ledger.record_charge(session, charge=dearer, call=call)
    assert conflict.conflict
    assert not conflict.created
    assert conflict.receipt_id == first.receipt_id
    assert (
        await scalar(
            database, "SELECT count(*) FROM run_events WHERE run_id = :r AND event = 'usage'", r=run_id
        )
        == 1
    )
    assert await scalar(database, "SELECT count(*) FROM credit_ledger WHERE run_id = :r", r=run_id) == 1
    async with database.transaction() as session:
        assert await ledger.get_balance(session, billing_account_id=user.billing_account_id) == 10_000 - 120


async def test_IDEMPOTENT_CHARGES_a_charge_survives_its_pooled_connection_dying(
    api: httpx.AsyncClient, database: Database
) -> None:
    """The statement pool does not ping before each checkout; a connection killed while idle (a
    Postgres restart) costs one retry of the idempotent statement on a fresh connection."""
    user = await create_user(api, credits=10_000)
    run_id = await insert_run(database, user.billing_account_id, user.user_id)
    charges = [_charge(user.billing_account_id, run_id, f"u-{n}") for n in range(2)]
    assert await database.single_statement(functools.partial(ledger.charge_once, charge=charges[0]))
    killed = await scalar(
        database,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name",
        name=STATEMENT_POOL_NAME,
    )
    assert killed >= 1
    outcome = await database.single_statement(functools.partial(ledger.charge_once, charge=charges[1]))
    assert outcome is not None
    assert outcome.created
    assert outcome.balance_after == 10_000 - 240
    assert await scalar(database, "SELECT count(*) FROM charge_receipts WHERE run_id = :r", r=run_id) == 2
