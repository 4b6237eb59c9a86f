"""Ledger write throughput: receipts per second on one hot account.

8 concurrent writers deliver charges through the worker meter's own write
(``activities.metering.write_charge``): the one charge statement of ``db.ledger`` (receipt, hold
settle, ledger debit, balance update, the model call's settlement and its ``usage`` event with
NOTIFY), run as its own transaction through ``Database.single_statement()``; a delivery whose
reference already has a receipt falls back to ``record_charge`` in a transaction. Every 5th delivery repeats an earlier charge.

The charges belong to 64 runs of the one account, each with an open credit hold and its calls
recorded ``pending`` beforehand: a busy tenant has many runs in flight, and what they share — the
hot spot measured here — is the account row. (One run's calls are sequential in its activity.)

Runs on an embedded Postgres (pgserver) migrated by Alembic; prints receipts/s, deliveries/s and the
bench process's CPU, then checks that the balance equals the ledger's sum, each charge has exactly
one receipt, every call is settled, every receipt has one usage event, and the holds settled the
same amount the ledger debited.

    .venv/bin/python -m bench.ledger_bench [--writers 8] [--charges 4000] [--runs 64]
                                           [--statement-connections 2]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

import psycopg
from sqlalchemy import make_url, text

from activities.metering import write_charge
from db import ledger, ledger_reads
from db.migrate import upgrade
from db.models import BillingAccount, CreditReservation, GraphRun, ModelCall, User
from db.session import Database
from runledger.contracts import ids

CREDITS = 516
TOPUP = 1_000_000_000


@dataclass(frozen=True)
class Delivery:
    charge: ledger.Charge
    call: ledger.CallSettlement


async def _setup(database: Database, *, charges: int, runs: int) -> tuple[str, list[Delivery]]:
    """One account with ``runs`` runs, each holding credits; one pending call per charge."""
    async with database.transaction() as session:
        user = User(name="bench")
        session.add(user)
        await session.flush()
        account = BillingAccount(owner_user_id=user.id, balance_credits=0)
        session.add(account)
        await session.flush()
        await ledger.record_topup(session, billing_account_id=account.id, amount=TOPUP, reference="bench")
        run_ids = [str(uuid.uuid4()) for _ in range(runs)]
        session.add_all(
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
            for run_id in run_ids
        )
        await session.flush()
        session.add_all(
            CreditReservation(billing_account_id=account.id, run_id=run_id, reserved_credits=TOPUP // runs)
            for run_id in run_ids
        )
        calls = [
            ModelCall(
                run_id=run_ids[n % runs],
                call_key=f"poem:{n}",
                attempt=1,
                model="gpt-4o-mini",
                request_hash="h",
            )
            for n in range(charges)
        ]
        session.add_all(calls)
        await session.flush()
    deliveries = []
    for n, call in enumerate(calls):
        unit = f"chatcmpl-{n}"
        deliveries.append(
            Delivery(
                charge=ledger.Charge(
                    billing_account_id=account.id,
                    run_id=call.run_id,
                    attempt=1,
                    usage_unit_id=unit,
                    source_system="litellm",
                    source_reference=ids.charge_source_reference(
                        run_id=call.run_id, attempt=1, usage_unit_id=unit
                    ),
                    graph_id="langgraph:poet",
                    model="gpt-4o-mini",
                    provider="openai",
                    tokens_in=12,
                    tokens_out=40,
                    cost_usd=Decimal("0.0000258"),
                    markup=Decimal(2),
                    charged_credits=CREDITS,
                ),
                call=ledger.CallSettlement(
                    call_id=call.id,
                    response={"text": "a short poem", "usage_unit_id": unit},
                    usage_event={"call_key": call.call_key, "model": "gpt-4o-mini", "credits": CREDITS},
                ),
            )
        )
    return account.id, deliveries


async def _deliver(database: Database, delivery: Delivery) -> bool:
    """The meter's write after a provider call; whether this delivery wrote the receipt."""
    return (await write_charge(database, delivery.charge, delivery.call)).created


async def _count(database: Database, sql: str, account: str) -> int:
    async with database.transaction() as session:
        return int((await session.execute(text(sql), {"a": account})).scalar_one())


async def run(database: Database, *, writers: int, charges: int, runs: int, connections: int) -> None:
    account, planned = await _setup(database, charges=charges, runs=runs)
    # Every charge once, and every 5th delivery repeats the charge two before it.
    order = []
    for n in range(charges):
        order.append(n)
        if n % 5 == 4:
            order.append(n - 2)
    queue: asyncio.Queue[Delivery] = asyncio.Queue()
    for n in order:
        queue.put_nowait(planned[n])
    created = 0

    async def writer() -> None:
        nonlocal created
        while not queue.empty():
            made = await _deliver(database, queue.get_nowait())
            created += made

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(writer() for _ in range(writers)))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started

    receipts = await _count(
        database, "SELECT count(*) FROM charge_receipts WHERE billing_account_id = :a", account
    )
    settled = await _count(
        database,
        "SELECT count(*) FROM model_calls c JOIN graph_runs r USING (run_id)"
        " WHERE r.billing_account_id = :a AND c.status = 'settled' AND c.receipt_id IS NOT NULL",
        account,
    )
    usage_events = await _count(
        database,
        "SELECT count(*) FROM run_events e JOIN graph_runs r USING (run_id)"
        " WHERE r.billing_account_id = :a AND e.event = 'usage'",
        account,
    )
    held = await _count(
        database,
        "SELECT sum(settled_credits) FROM credit_reservations WHERE billing_account_id = :a",
        account,
    )
    async with database.transaction() as session:
        balance = await ledger.get_balance(session, billing_account_id=account)
        total = await ledger_reads.ledger_sum(session, billing_account_id=account)
    expected = CREDITS * charges
    print(
        f"writers={writers} statement connections={connections} runs={runs} charges={charges} deliveries={len(order)} (duplicates {len(order) - charges})"
    )
    print(f"wall {wall:.2f} s: {charges / wall:,.0f} receipts/s, {len(order) / wall:,.0f} deliveries/s")
    print(
        f"bench process CPU {cpu:.2f} s ({cpu / wall:.0%} of one core), {cpu / len(order) * 1e3:.2f} ms/delivery"
    )
    checks = {
        "one receipt per charge": receipts == charges == created,
        "every call settled": settled == charges,
        "one usage event per receipt": usage_events == charges,
        "balance == ledger sum": balance == total,
        "debited == charged": TOPUP - balance == expected,
        "holds settled == charged": held == expected,
    }
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if not all(checks.values()):
        raise SystemExit("ledger bench: a check failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--charges", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=64)
    parser.add_argument(
        "--statement-connections",
        type=int,
        default=2,
        help="size of the single-statement pool (the product's default is 2)",
    )
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
            database = Database(url, pool_size=args.writers, statement_pool_size=args.statement_connections)
            try:
                await run(
                    database,
                    writers=args.writers,
                    charges=args.charges,
                    runs=args.runs,
                    connections=args.statement_connections,
                )
            finally:
                await database.dispose()

        asyncio.run(go())
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


if __name__ == "__main__":
    main()
