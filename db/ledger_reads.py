"""Read-only queries of the money tables: the ledger's sum, and pages of ledger rows and receipts.

Contract: nothing here writes (ONE_LEDGER_WRITER: ``db.ledger`` is the only writer of receipts,
ledger rows and balances). Pages are newest first; ``before_id`` / ``before`` are keyset cursors
(the last row of the previous page), so a page is stable while new rows are appended.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ChargeReceipt, CreditLedgerEntry


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
