"""Run-scoped credit reservations: the hold that keeps concurrent runs from overspending.

``available = balance - sum of open holds (reserved - settled, never below 0)``. Reserving locks the
account row, so concurrent reservations on one account are serialized and each sees the others; a
run's hold is one statement (:func:`reserve`, a database function).
Charges settle against the run's hold inside ``db.ledger.record_charge``; the run's end releases it.

Before each model call (BOUNDED_OVERSPEND), :func:`reserve_call` locks the run's hold and the
account, reads the run's state and grows the run's hold to cover the call's maximum cost plus the
run's calls already in flight, if the balance less the other runs' holds covers it, and records the
call ``pending``: one statement (a database function), so the account's lock is held for the
server's work only. No charge on the account can commit while the lock is held (every charge
updates the account row), so the balance, the holds and the calls in flight are read as one state.
Since every hold covers its calls in flight and each charge is at most its call's reservation, the
balance never goes below zero by more than what a provider bills beyond the ``max_tokens`` it was
sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import psycopg
from sqlalchemy import Table, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.errors import NotFoundError
from db.models import BillingAccount, CreditReservation

_HELD = func.greatest(CreditReservation.reserved_credits - CreditReservation.settled_credits, 0)


@dataclass(frozen=True)
class Hold:
    ok: bool
    available: int
    reservation_id: str | None


@dataclass(frozen=True)
class CallReservation:
    """What :func:`reserve_call` decided: ``outcome`` is ``reserved`` (``call_id`` set),
    ``not_running``, ``grant_exhausted``, ``insufficient`` or ``released``."""

    outcome: str
    call_id: str | None
    #: The run's status (None: no such run).
    run_status: str | None
    #: What the run may spend: the balance less the other runs' holds.
    spendable: int
    #: The call's maximum cost plus this attempt's calls already at the provider.
    needed: int
    #: The grant's credits left (with a spend-capped grant).
    grant_left: int | None


# One statement, its own transaction: the function (migration 0014_reserve_call) holds the run's
# hold and the account's lock for the server's work only, never across a round trip to the worker.
_RESERVE_CALL_SQL = """
SELECT outcome, call_id, run_status, spendable, needed, grant_left FROM reserve_model_call(
    %(run_id)s, %(account)s, %(attempt)s, %(call_key)s, %(model)s, %(request_hash)s,
    %(usage_unit_id)s, %(max_credits)s, %(grant_id)s
)
"""


async def reserve_call(
    conn: psycopg.AsyncConnection[Any],
    *,
    billing_account_id: str,
    run_id: str,
    grant_id: str | None,
    attempt: int,
    call_key: str,
    model: str,
    request_hash: str,
    usage_unit_id: str,
    max_credits: int,
) -> CallReservation:
    """Reserve a model call: if the run is running, its spend-capped grant (if any) covers the
    grant's calls in flight plus ``max_credits``, and the balance less the other runs' holds covers
    ``max_credits`` plus this attempt's calls in flight, grow the run's hold to cover that and record
    the call ``pending`` (idempotent per run, key and attempt). Raises NotFoundError without the
    account; a call of this key and attempt that is no longer pending raises."""
    cursor = await conn.execute(
        _RESERVE_CALL_SQL,
        {
            "run_id": run_id,
            "account": billing_account_id,
            "attempt": attempt,
            "call_key": call_key,
            "model": model,
            "request_hash": request_hash,
            "usage_unit_id": usage_unit_id,
            "max_credits": max_credits,
            "grant_id": grant_id,
        },
    )
    row = await cursor.fetchone()
    assert row is not None  # the function always returns one row
    if row[0] == "no_account":
        raise NotFoundError("billing account", billing_account_id)
    return CallReservation(
        outcome=str(row[0]),
        call_id=None if row[1] is None else str(row[1]),
        run_status=row[2],
        spendable=int(row[3] or 0),
        needed=int(row[4] or 0),
        grant_left=None if row[5] is None else int(row[5]),
    )


async def _lock_balance(session: AsyncSession, billing_account_id: str) -> int:
    balance = (
        await session.execute(
            select(BillingAccount.balance_credits)
            .where(BillingAccount.id == billing_account_id)
            # FOR NO KEY UPDATE: it serializes holds and balance changes on the account, but not the
            # key-share locks that inserting rows which reference the account takes (no deadlock).
            .with_for_update(key_share=True)
        )
    ).scalar_one_or_none()
    if balance is None:
        raise NotFoundError("billing account", billing_account_id)
    return balance


async def held(session: AsyncSession, *, billing_account_id: str, except_run_id: str | None = None) -> int:
    stmt = select(func.coalesce(func.sum(_HELD), 0)).where(
        CreditReservation.billing_account_id == billing_account_id, CreditReservation.status == "open"
    )
    if except_run_id is not None:
        stmt = stmt.where(CreditReservation.run_id != except_run_id)
    return int((await session.execute(stmt)).scalar_one())


async def available(session: AsyncSession, *, billing_account_id: str) -> int:
    """The account's balance less every open hold (read without locking: a preflight, not a hold)."""
    balance = (
        await session.execute(
            select(BillingAccount.balance_credits).where(BillingAccount.id == billing_account_id)
        )
    ).scalar_one_or_none()
    if balance is None:
        raise NotFoundError("billing account", billing_account_id)
    return balance - await held(session, billing_account_id=billing_account_id)


async def reserve(session: AsyncSession, *, billing_account_id: str, run_id: str, amount: int) -> Hold:
    """Hold ``amount`` credits for a run if the account's available balance covers it, in the
    caller's transaction (the account stays locked until it commits). Idempotent per run: a run that
    already has a hold gets it back (``available`` 0: not computed), without taking the account's
    lock, so an API run (whose hold was made with its row) is authorized without queueing behind
    every charge of its account. One statement: the function of migration 0015_reserve_hold."""
    row = (
        await session.execute(
            text(
                "SELECT outcome, available, reservation_id FROM reserve_run_hold(:run_id, :account, :amount)"
            ),
            {"run_id": run_id, "account": billing_account_id, "amount": amount},
        )
    ).one()
    if row.outcome == "no_account":
        raise NotFoundError("billing account", billing_account_id)
    return Hold(
        ok=row.outcome != "insufficient",
        available=int(row.available),
        reservation_id=None if row.reservation_id is None else str(row.reservation_id),
    )


async def spendable_for_run(
    session: AsyncSession, *, billing_account_id: str, run_id: str, lock: bool = False
) -> int:
    """What a run may still spend: the balance less what *other* runs hold (its own hold is part of
    the balance it may use)."""
    if lock:
        balance = await _lock_balance(session, billing_account_id)
    else:
        balance = (
            await session.execute(
                select(BillingAccount.balance_credits).where(BillingAccount.id == billing_account_id)
            )
        ).scalar_one()
    return balance - await held(session, billing_account_id=billing_account_id, except_run_id=run_id)


async def for_run(session: AsyncSession, *, run_id: str) -> CreditReservation | None:
    return (
        await session.execute(select(CreditReservation).where(CreditReservation.run_id == run_id))
    ).scalar_one_or_none()


async def release(session: AsyncSession, *, run_id: str) -> None:
    # Core, not an ORM-enabled UPDATE (see db.runs.RUNS): it runs at the end of every run.
    holds = cast(Table, CreditReservation.__table__)
    await session.execute(
        update(holds)
        .where(holds.c.run_id == run_id, holds.c.status == "open")
        .values(status="released", released_at=func.now())
    )


async def open_holds(
    session: AsyncSession, *, billing_account_id: str | None, limit: int = 100
) -> list[CreditReservation]:
    """Open holds, newest first; ``billing_account_id`` None is every account's."""
    stmt = select(CreditReservation).where(CreditReservation.status == "open")
    if billing_account_id is not None:
        stmt = stmt.where(CreditReservation.billing_account_id == billing_account_id)
    stmt = stmt.order_by(CreditReservation.created_at.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())
