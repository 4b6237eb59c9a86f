"""Reconciliation queries: stale pending model calls and balance drift (NO_SILENT_UNBILLED_CALLS).

A model call is recorded ``pending`` before the provider is asked and settled with its receipt. A
``pending`` row older than the threshold belongs to an attempt that died between the two (a killed
worker): the provider may have answered and billed us, and no receipt exists. Such rows are flagged —
never silently dropped — and listed in the report for an operator to settle by hand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import BillingAccount, CreditLedgerEntry, GraphRun, ModelCall, ReconciliationReport


async def flag_stale_pending(session: AsyncSession, *, older_than_seconds: int) -> list[dict[str, Any]]:
    result = await session.execute(
        update(ModelCall)
        .where(
            ModelCall.status == "pending",
            ModelCall.created_at <= func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds),
        )
        .values(
            status="flagged", error_message="pending past the reconciliation threshold", settled_at=func.now()
        )
        .returning(ModelCall.id, ModelCall.run_id, ModelCall.call_key, ModelCall.attempt, ModelCall.model)
    )
    flagged = [dict(row._mapping) for row in result]
    if not flagged:
        return flagged
    owners = await session.execute(
        select(GraphRun.run_id, GraphRun.billing_account_id).where(
            GraphRun.run_id.in_({row["run_id"] for row in flagged})
        )
    )
    accounts = {run_id: account for run_id, account in owners}
    for row in flagged:
        row["billing_account_id"] = accounts.get(row["run_id"])
    return flagged


async def unmetered_calls(session: AsyncSession, *, since: datetime | None) -> list[dict[str, Any]]:
    """Calls that bypassed the meter (NO_UNMETERED_MODEL_CALLS), recorded since the last report."""
    query = select(
        ModelCall.id, ModelCall.run_id, ModelCall.call_key, ModelCall.attempt, ModelCall.model
    ).where(ModelCall.status == "flagged", ModelCall.call_key.like("unmetered:%"))
    if since is not None:
        query = query.where(ModelCall.created_at >= since)
    return [dict(row._mapping) for row in await session.execute(query.order_by(ModelCall.created_at))]


async def balance_drift(session: AsyncSession) -> list[dict[str, Any]]:
    """Accounts whose cached balance differs from the sum of their ledger."""
    sums = (
        select(CreditLedgerEntry.billing_account_id, func.sum(CreditLedgerEntry.amount).label("total"))
        .group_by(CreditLedgerEntry.billing_account_id)
        .subquery()
    )
    rows = await session.execute(
        select(BillingAccount.id, BillingAccount.balance_credits, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, sums.c.billing_account_id == BillingAccount.id)
        .where(BillingAccount.balance_credits != func.coalesce(sums.c.total, 0))
    )
    return [
        {
            "billing_account_id": account,
            "balance_credits": balance,
            "ledger_sum": int(total),
            "drift": balance - int(total),
        }
        for account, balance, total in rows
    ]


async def count_accounts(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(BillingAccount.id)))).scalar_one())


async def save_report(
    session: AsyncSession,
    *,
    started_at: datetime,
    threshold_seconds: int,
    flagged: list[dict[str, Any]],
    drift: list[dict[str, Any]],
    accounts_checked: int,
    unmetered: list[dict[str, Any]] | None = None,
) -> ReconciliationReport:
    report = ReconciliationReport(
        started_at=started_at,
        finished_at=(await session.execute(select(func.clock_timestamp()))).scalar_one(),
        threshold_seconds=threshold_seconds,
        flagged_calls=len(flagged),
        accounts_checked=accounts_checked,
        accounts_with_drift=len(drift),
        details={"flagged_calls": flagged, "drift": drift, "unmetered_calls": unmetered or []},
    )
    session.add(report)
    await session.flush()
    return report


async def last_report(session: AsyncSession) -> ReconciliationReport | None:
    return (
        await session.execute(select(ReconciliationReport).order_by(ReconciliationReport.id.desc()).limit(1))
    ).scalar_one_or_none()


async def pending_calls(session: AsyncSession) -> int:
    return int(
        (
            await session.execute(text("SELECT count(*) FROM model_calls WHERE status = 'pending'"))
        ).scalar_one()
    )
