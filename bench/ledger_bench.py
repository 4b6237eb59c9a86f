"""Ledger write throughput: receipts per second on one hot account.

8 concurrent writers each deliver charges through ``db.ledger.record_charge`` (the one ledger writer:
receipt + ledger debit + balance update + reservation settle, one transaction), every 5th delivery a
duplicate of an earlier charge. Runs on an embedded Postgres (pgserver) migrated by Alembic; prints
receipts/s, deliveries/s, and checks that the balance equals the ledger's sum and that each charge
has exactly one receipt.

    .venv/bin/python -m bench.ledger_bench [--writers 8] [--charges 4000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from decimal import Decimal

import psycopg
from sqlalchemy import make_url, text

from contracts import ids
from db import ledger
from db.migrate import upgrade
from db.models import BillingAccount, GraphRun, User
from db.session import Database


def _charge(account: str, run_id: str, n: int) -> ledger.Charge:
    unit = f"call-{n}"
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
        tokens_in=12,
        tokens_out=40,
        cost_usd=Decimal("0.0000258"),
        markup=Decimal(2),
        charged_credits=516,
    )


async def run(database: Database, writers: int, charges: int) -> None:
    async with database.transaction() as session:
        user = User(name="bench")
        session.add(user)
        await session.flush()
        account = BillingAccount(owner_user_id=user.id, balance_credits=0)
        session.add(account)
        await session.flush()
        run_id = str(uuid.uuid4())
        session.add(
            GraphRun(
                run_id=run_id,
                workflow_id=ids.graph_run_workflow_id(run_id),
                graph_id="langgraph:poet",
                billing_account_id=account.id,
                run_kind="user_immediate",
                trigger_source="api",
                requested_by=user.id,
                input={},
                trace_id=ids.langfuse_trace_id(run_id),
            )
        )
    # Deliveries: every charge once, and every 5th delivery repeats an earlier charge.
    deliveries = []
    for n in range(charges):
        deliveries.append(n)
        if n % 5 == 4:
            deliveries.append(n - 2)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in deliveries:
        queue.put_nowait(n)
    created = 0

    async def writer() -> None:
        nonlocal created
        while not queue.empty():
            n = queue.get_nowait()
            async with database.transaction() as session:
                outcome = await ledger.record_charge(session, charge=_charge(account.id, run_id, n))
            made = 1 if outcome.created else 0
            created += made

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    wall = time.perf_counter() - started
    async with database.transaction() as session:
        receipts = (
            await session.execute(
                text("SELECT count(*) FROM charge_receipts WHERE run_id = :r"), {"r": run_id}
            )
        ).scalar_one()
        balance = await ledger.get_balance(session, billing_account_id=account.id)
        total = await ledger.ledger_sum(session, billing_account_id=account.id)
    print(
        f"writers={writers} charges={charges} deliveries={len(deliveries)} (duplicates {len(deliveries) - charges})"
    )
    print(f"wall {wall:.2f} s: {charges / wall:,.0f} receipts/s, {len(deliveries) / wall:,.0f} deliveries/s")
    print(f"receipts written {receipts} (== charges: {receipts == charges}); created outcomes {created}")
    print(f"balance {balance} == ledger sum {total}: {balance == total}; expected {-516 * charges}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--charges", type=int, default=4000)
    args = parser.parse_args()
    from pgserver.postgres_server import get_server

    pgdata = tempfile.mkdtemp(prefix="rl-bench-pg-")
    server = get_server(pgdata, cleanup_mode="stop")
    try:
        base = server.get_uri()
        name = f"ledger_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(base).set(database=name).render_as_string(hide_password=False)
        upgrade(url)

        async def go() -> None:
            database = Database(url, pool_size=args.writers)
            try:
                await run(database, args.writers, args.charges)
            finally:
                await database.dispose()

        asyncio.run(go())
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


if __name__ == "__main__":
    main()
