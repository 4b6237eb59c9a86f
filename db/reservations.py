"""Run-scoped credit reservations: the hold that keeps concurrent runs from overspending.

``available = balance - sum of open holds (reserved - settled, never below 0)``. Reserving locks the
account row, so concurrent reservations on one account are serialized and each sees the others.
Charges settle against the run's hold inside ``db.ledger.record_charge``; the run's end releases it.

Before each model call (BOUNDED_OVERSPEND) the meter locks the run's hold and the account and reads
the run's state (:func:`lock_for_call`), and :func:`hold_for_call` grows the run's hold to cover the
call's maximum cost plus the run's calls already in flight, if the balance less the other runs'
holds covers it. No charge on the account can commit while the lock is held (every charge updates
the account row), so the balance, the holds and the calls in flight are read as one state. Since every hold covers its calls in flight and each
charge is at most its call's reservation, the balance never goes below zero by more than what a
provider bills beyond the ``max_tokens`` it was sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.errors import NotFoundError
from db.models import BillingAccount, CreditReservation
from db.session import driver_connection

_HELD = func.greatest(CreditReservation.reserved_credits - CreditReservation.settled_credits, 0)


@dataclass(frozen=True)
class Hold:
    ok: bool
    available: int
    reservation: CreditReservation | None


@dataclass(frozen=True)
class CallHold:
    ok: bool
    #: What the run may spend: the balance less the other runs' holds.
    spendable: int
    #: The run's hold was already released: the run has ended.
    released: bool = False


@dataclass(frozen=True)
class CallState:
    """What a model call's reservation decides on, read under the run's hold and account locks."""

    #: The run's status (None: no such run).
    run_status: str | None
    balance: int
    #: What the account's other runs hold (their open holds' unsettled parts).
    held_by_others: int
    #: What this attempt's calls now at the provider hold (their reserved maximum costs).
    in_flight: int
    #: The run's hold: None when it has none yet, else ``open`` or ``released``.
    hold_status: str | None


# Raw SQL on the session's connection: this runs before every model call of every run, and the
# ORM's per-statement cost was the larger part of it (``bench.latency_bench --profile-worker``).
_LOCK_HOLD_SQL = "SELECT status FROM credit_reservations WHERE run_id = %(run_id)s FOR UPDATE"
# FOR NO KEY UPDATE: it serializes holds and balance changes on the account, but not the key-share
# locks that inserting rows which reference the account takes (no deadlock).
_LOCK_ACCOUNT_SQL = "SELECT balance_credits FROM billing_accounts WHERE id = %(account)s FOR NO KEY UPDATE"
# After both locks, as its own statement: READ COMMITTED gives it a snapshot that includes every
# charge and hold committed while this transaction waited for the locks. Its second column is
# :func:`held` (``_HELD`` summed over the other runs' open holds), written out for the driver.
_CALL_STATE_SQL = """
SELECT
    (SELECT status FROM graph_runs WHERE run_id = %(run_id)s),
    (SELECT coalesce(sum(greatest(reserved_credits - settled_credits, 0)), 0) FROM credit_reservations
     WHERE billing_account_id = %(account)s AND status = 'open' AND run_id <> %(run_id)s),
    (SELECT coalesce(sum(reserved_credits), 0) FROM model_calls
     WHERE run_id = %(run_id)s AND attempt = %(attempt)s AND status = 'pending')
"""
_GROW_HOLD_SQL = """
UPDATE credit_reservations
SET reserved_credits = greatest(reserved_credits, settled_credits + %(needed)s)
WHERE run_id = %(run_id)s AND status = 'open'
"""
_MAKE_HOLD_SQL = """
INSERT INTO credit_reservations (billing_account_id, run_id, reserved_credits)
VALUES (%(account)s, %(run_id)s, %(needed)s)
"""


async def lock_for_call(
    session: AsyncSession, *, billing_account_id: str, run_id: str, attempt: int
) -> CallState:
    """Lock the run's hold, then the account row, for the rest of the transaction, and read the
    state a call's reservation decides on. In that order: a charge of the same run (another call of
    it, in a parallel node) locks the hold before it updates the account, so taking the account
    first could deadlock."""
    conn = await driver_connection(session)
    params = {"run_id": run_id, "account": billing_account_id, "attempt": attempt}
    hold = await (await conn.execute(_LOCK_HOLD_SQL, params)).fetchone()
    account = await (await conn.execute(_LOCK_ACCOUNT_SQL, params)).fetchone()
    if account is None:
        raise NotFoundError("billing account", billing_account_id)
    state = await (await conn.execute(_CALL_STATE_SQL, params)).fetchone()
    assert state is not None  # a SELECT without FROM always returns its row
    return CallState(
        run_status=state[0],
        balance=int(account[0]),
        held_by_others=int(state[1]),
        in_flight=int(state[2]),
        hold_status=None if hold is None else str(hold[0]),
    )


async def hold_for_call(
    session: AsyncSession, *, billing_account_id: str, run_id: str, state: CallState, needed: int
) -> CallHold:
    """With the locks of :func:`lock_for_call` (``state``): if what the run may spend covers
    ``needed`` (its calls in flight plus the next call's maximum), grow the run's hold so that its
    unsettled part covers it too, and other runs see it held."""
    spendable = state.balance - state.held_by_others
    if spendable < needed:
        return CallHold(ok=False, spendable=spendable)
    if state.hold_status not in (None, "open"):
        # Released: the run ended after the meter saw it running.
        return CallHold(ok=False, spendable=spendable, released=True)
    conn = await driver_connection(session)
    params = {"run_id": run_id, "account": billing_account_id, "needed": needed}
    await conn.execute(_MAKE_HOLD_SQL if state.hold_status is None else _GROW_HOLD_SQL, params)
    return CallHold(ok=True, spendable=spendable)


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
    """Hold ``amount`` credits for a run if the account's available balance covers it. Idempotent per
    run: a run that already has a hold gets it back (``available`` 0: not computed), without taking
    the account's lock, so an API run (whose hold was made with its row) is authorized without
    queueing behind every charge of its account."""
    existing = await for_run(session, run_id=run_id)
    if existing is not None:
        return Hold(ok=True, available=0, reservation=existing)
    balance = await _lock_balance(session, billing_account_id)
    existing = await for_run(session, run_id=run_id)  # made by another start while this one waited
    if existing is not None:
        return Hold(ok=True, available=0, reservation=existing)
    available = balance - await held(session, billing_account_id=billing_account_id, except_run_id=run_id)
    if available < amount:
        return Hold(ok=False, available=available, reservation=None)
    reservation = CreditReservation(
        billing_account_id=billing_account_id, run_id=run_id, reserved_credits=amount
    )
    session.add(reservation)
    await session.flush()
    return Hold(ok=True, available=available - amount, reservation=reservation)


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
    await session.execute(
        update(CreditReservation)
        .where(CreditReservation.run_id == run_id, CreditReservation.status == "open")
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
