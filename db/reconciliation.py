"""Reconciliation queries: calls that reached a provider without a charge, and balance drift
(NO_SILENT_UNBILLED_CALLS).

A model call is recorded ``pending`` before the provider is asked and settled with its receipt.
What reconciliation finds (the charges ``unsettled`` calls owe are written first, by the activity,
through the ledger writer):

- ``unsettled`` calls without a known charge (a stream that broke with its usage unknown, an
  attempt that ended mid-call): flagged with their reason;
- ``pending`` calls older than the threshold (an attempt that died between the two, e.g. a killed
  worker; the provider may have answered and billed us): flagged with that reason.

Flagged calls are never silently dropped: every report lists them all for an operator.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import BillingAccount, CreditLedgerEntry, GraphRun, ModelCall, ReconciliationReport

STALE_PENDING_REASON = "pending past the reconciliation threshold: its attempt may have died mid-call"


async def flag_unsettleable(session: AsyncSession, *, older_than_seconds: int) -> list[dict[str, Any]]:
    """Flag what cannot be settled (see the module docstring); returns the calls with their reason."""
    stale = and_(
        ModelCall.status == "pending",
        ModelCall.created_at <= func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds),
    )
    unknown = and_(ModelCall.status == "unsettled", ModelCall.charge.is_(None))
    result = await session.execute(
        update(ModelCall)
        .where(or_(stale, unknown))
        .values(
            status="flagged",
            error_message=case(
                (ModelCall.status == "pending", STALE_PENDING_REASON),
                else_=func.coalesce(ModelCall.error_message, "unsettled"),
            ),
            settled_at=func.now(),
        )
        .returning(
            ModelCall.id,
            ModelCall.run_id,
            ModelCall.call_key,
            ModelCall.attempt,
            ModelCall.model,
            ModelCall.error_message.label("reason"),
        )
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


async def open_flags(session: AsyncSession, *, limit: int = 500) -> list[dict[str, Any]]:
    """Every call flagged so far (newest first): what an operator still has to settle by hand."""
    rows = await session.execute(
        select(
            ModelCall.id,
            ModelCall.run_id,
            ModelCall.call_key,
            ModelCall.attempt,
            ModelCall.model,
            ModelCall.error_message.label("reason"),
            GraphRun.billing_account_id,
        )
        .join(GraphRun, GraphRun.run_id == ModelCall.run_id)
        .where(ModelCall.status == "flagged")
        .order_by(ModelCall.created_at.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]


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
    settled: list[dict[str, Any]] | None = None,
    unmetered: list[dict[str, Any]] | None = None,
) -> ReconciliationReport:
    report = ReconciliationReport(
        started_at=started_at,
        finished_at=(await session.execute(select(func.clock_timestamp()))).scalar_one(),
        threshold_seconds=threshold_seconds,
        flagged_calls=len(flagged),
        accounts_checked=accounts_checked,
        accounts_with_drift=len(drift),
        details={
            "flagged_calls": flagged,
            "settled_calls": settled or [],
            "open_flags": await open_flags(session),
            "unmetered_calls": unmetered or [],
            "drift": drift,
        },
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
