"""The one ledger writer (ONE_LEDGER_WRITER): every charge receipt, every credit_ledger row, every
balance change and every grant spend counter is written here, and nowhere else.

A charge is one receipt + one ledger debit + one balance update in the caller's transaction, made
idempotent by ``UNIQUE(source_system, source_reference)``: a retried write is a no-op, and the same
reference with another amount is recorded in ``charge_conflicts`` and never applied. Top-ups are
idempotent by ``UNIQUE(reason, reference)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Text, Uuid, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.errors import NotFoundError, TopupConflictError
from db.models import (
    BillingAccount,
    ChargeConflict,
    ChargeReceipt,
    CreditLedgerEntry,
)

TOPUP = "topup"
CHARGE = "charge_receipt"


@dataclass(frozen=True)
class Charge:
    billing_account_id: str
    run_id: str
    attempt: int
    usage_unit_id: str
    source_system: str
    source_reference: str
    graph_id: str
    model: str
    provider: str | None
    tokens_in: int
    tokens_out: int
    cost_usd: Decimal
    markup: Decimal
    charged_credits: int
    #: The execution grant the run bills under; its spend counter moves with the charge.
    grant_id: str | None = None


@dataclass(frozen=True)
class ChargeOutcome:
    receipt_id: str
    created: bool
    conflict: bool = False
    balance_after: int | None = None


async def _apply(
    session: AsyncSession,
    *,
    billing_account_id: str,
    amount: int,
    reason: str,
    reference: str,
    run_id: str | None = None,
    receipt_id: str | None = None,
) -> CreditLedgerEntry:
    # One statement: the balance update and the ledger row that records it. The account row is
    # the hot spot of a busy account (every charge locks it), so it is held for as short as possible.
    new_balance = (
        update(BillingAccount)
        .where(BillingAccount.id == billing_account_id)
        .values(balance_credits=BillingAccount.balance_credits + amount)
        .returning(BillingAccount.balance_credits)
        .cte("new_balance")
    )
    entry = (
        await session.execute(
            insert(CreditLedgerEntry)
            .from_select(
                [
                    "billing_account_id",
                    "amount",
                    "balance_after",
                    "reason",
                    "reference",
                    "run_id",
                    "receipt_id",
                ],
                select(
                    literal(billing_account_id, Uuid(as_uuid=False)),
                    literal(amount, BigInteger()),
                    new_balance.c.balance_credits,
                    literal(reason, Text()),
                    literal(reference, Text()),
                    literal(run_id, Uuid(as_uuid=False)),
                    literal(receipt_id, Uuid(as_uuid=False)),
                ),
            )
            .returning(CreditLedgerEntry)
        )
    ).scalar_one_or_none()
    if entry is None:
        raise NotFoundError("billing account", billing_account_id)
    return entry


#: The whole charge in one statement (one round trip, so the account row — the hot spot of a busy
#: account — is locked only from this statement to the commit). Every data-modifying CTE reads from
#: ``receipt``: when the receipt already exists (a retried delivery), ON CONFLICT returns no row and
#: nothing else changes.
_CHARGE_SQL = text(
    """
WITH receipt AS (
    INSERT INTO charge_receipts (
        billing_account_id, run_id, attempt, usage_unit_id, source_system, source_reference,
        graph_id, model, provider, tokens_in, tokens_out, cost_usd, markup, charged_credits
    )
    VALUES (
        CAST(:account AS uuid), CAST(:run_id AS uuid), :attempt, :usage_unit_id, :source_system,
        :source_reference, :graph_id, :model, :provider, :tokens_in, :tokens_out, :cost_usd, :markup,
        :credits
    )
    ON CONFLICT (source_system, source_reference) DO NOTHING
    RETURNING id, charged_credits
), hold AS (
    -- The charge settles against the run's hold: what the run still holds shrinks as it spends.
    UPDATE credit_reservations SET settled_credits = settled_credits + receipt.charged_credits
    FROM receipt
    WHERE credit_reservations.run_id = CAST(:run_id AS uuid) AND credit_reservations.status = 'open'
    RETURNING credit_reservations.id
), grant_spend AS (
    UPDATE execution_grants SET spent_credits = spent_credits + receipt.charged_credits
    FROM receipt
    WHERE execution_grants.id = CAST(:grant_id AS uuid)
    RETURNING execution_grants.id
), balance AS (
    UPDATE billing_accounts SET balance_credits = balance_credits - receipt.charged_credits
    FROM receipt
    WHERE billing_accounts.id = CAST(:account AS uuid)
    RETURNING billing_accounts.balance_credits
), entry AS (
    INSERT INTO credit_ledger (billing_account_id, amount, balance_after, reason, reference, run_id, receipt_id)
    SELECT CAST(:account AS uuid), -receipt.charged_credits, balance.balance_credits, :reason,
           :source_reference, CAST(:run_id AS uuid), receipt.id
    FROM receipt, balance
    RETURNING balance_after
)
SELECT receipt.id AS receipt_id, entry.balance_after FROM receipt, entry
"""
)


async def record_charge(session: AsyncSession, *, charge: Charge) -> ChargeOutcome:
    """Write a charge exactly once. Safe under concurrent duplicate deliveries: the loser of the
    UNIQUE race waits for the winner's commit and then sees the existing receipt."""
    row = (
        await session.execute(
            _CHARGE_SQL,
            {
                "account": charge.billing_account_id,
                "run_id": charge.run_id,
                "attempt": charge.attempt,
                "usage_unit_id": charge.usage_unit_id,
                "source_system": charge.source_system,
                "source_reference": charge.source_reference,
                "graph_id": charge.graph_id,
                "model": charge.model,
                "provider": charge.provider,
                "tokens_in": charge.tokens_in,
                "tokens_out": charge.tokens_out,
                "cost_usd": charge.cost_usd,
                "markup": charge.markup,
                "credits": charge.charged_credits,
                "grant_id": charge.grant_id,
                "reason": CHARGE,
            },
        )
    ).one_or_none()
    if row is not None:
        return ChargeOutcome(
            receipt_id=str(row.receipt_id), created=True, balance_after=int(row.balance_after)
        )
    existing = (
        await session.execute(
            select(ChargeReceipt).where(
                ChargeReceipt.source_system == charge.source_system,
                ChargeReceipt.source_reference == charge.source_reference,
            )
        )
    ).scalar_one_or_none()
    if existing is None:
        # Unreachable: ON CONFLICT returned nothing, so a receipt holds this reference. Fail loudly.
        raise RuntimeError(f"charge {charge.source_reference} conflicted with no receipt")
    same = (
        existing.charged_credits == charge.charged_credits
        and existing.billing_account_id == charge.billing_account_id
    )
    if not same:
        session.add(
            ChargeConflict(
                source_system=charge.source_system,
                source_reference=charge.source_reference,
                existing_receipt_id=existing.id,
                existing_credits=existing.charged_credits,
                attempted_credits=charge.charged_credits,
            )
        )
        await session.flush()
    return ChargeOutcome(receipt_id=existing.id, created=False, conflict=not same)


async def record_topup(
    session: AsyncSession, *, billing_account_id: str, amount: int, reference: str
) -> tuple[CreditLedgerEntry, bool]:
    """Credit an account once per reference. Returns ``(entry, created)``; the same reference with
    another amount or account raises :class:`TopupConflictError`."""
    if amount <= 0:
        raise ValueError("a top-up amount must be positive")
    existing = await _find_entry(session, reason=TOPUP, reference=reference)
    if existing is None:
        try:
            async with session.begin_nested():
                return (
                    await _apply(
                        session,
                        billing_account_id=billing_account_id,
                        amount=amount,
                        reason=TOPUP,
                        reference=reference,
                    ),
                    True,
                )
        except IntegrityError:
            # A concurrent request with the same reference committed first.
            existing = await _find_entry(session, reason=TOPUP, reference=reference)
            if existing is None:
                raise
    if existing.amount != amount or existing.billing_account_id != billing_account_id:
        raise TopupConflictError(reference)
    return existing, False


async def _find_entry(session: AsyncSession, *, reason: str, reference: str) -> CreditLedgerEntry | None:
    result = await session.execute(
        select(CreditLedgerEntry).where(
            CreditLedgerEntry.reason == reason, CreditLedgerEntry.reference == reference
        )
    )
    return result.scalar_one_or_none()


async def get_balance(session: AsyncSession, *, billing_account_id: str) -> int:
    balance = (
        await session.execute(
            select(BillingAccount.balance_credits).where(BillingAccount.id == billing_account_id)
        )
    ).scalar_one_or_none()
    if balance is None:
        raise NotFoundError("billing account", billing_account_id)
    return balance


async def ledger_sum(session: AsyncSession, *, billing_account_id: str) -> int:
    """Sum of the ledger: the cached balance must always equal it."""
    total = (
        await session.execute(
            select(func.coalesce(func.sum(CreditLedgerEntry.amount), 0)).where(
                CreditLedgerEntry.billing_account_id == billing_account_id
            )
        )
    ).scalar_one()
    return int(total)


async def list_ledger(
    session: AsyncSession,
    *,
    billing_account_id: str,
    limit: int,
    before_id: int | None = None,
    run_id: str | None = None,
) -> list[CreditLedgerEntry]:
    stmt = select(CreditLedgerEntry).where(CreditLedgerEntry.billing_account_id == billing_account_id)
    if before_id is not None:
        stmt = stmt.where(CreditLedgerEntry.id < before_id)
    if run_id is not None:
        stmt = stmt.where(CreditLedgerEntry.run_id == run_id)
    stmt = stmt.order_by(CreditLedgerEntry.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def list_receipts(
    session: AsyncSession,
    *,
    billing_account_id: str,
    limit: int,
    run_id: str | None = None,
    before: tuple[datetime, str] | None = None,
) -> list[ChargeReceipt]:
    stmt = select(ChargeReceipt).where(ChargeReceipt.billing_account_id == billing_account_id)
    if run_id is not None:
        stmt = stmt.where(ChargeReceipt.run_id == run_id)
    if before is not None:
        created_at, receipt_id = before
        stmt = stmt.where(
            (ChargeReceipt.created_at < created_at)
            | ((ChargeReceipt.created_at == created_at) & (ChargeReceipt.id < receipt_id))
        )
    stmt = stmt.order_by(ChargeReceipt.created_at.desc(), ChargeReceipt.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def run_charge_totals(session: AsyncSession, *, run_id: str) -> tuple[int, int]:
    """``(receipts, charged_credits)`` of a run."""
    row = (
        await session.execute(
            select(
                func.count(ChargeReceipt.id), func.coalesce(func.sum(ChargeReceipt.charged_credits), 0)
            ).where(ChargeReceipt.run_id == run_id)
        )
    ).one()
    return int(row[0]), int(row[1])
