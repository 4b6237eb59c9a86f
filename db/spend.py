"""Read-only spend aggregates for the dashboard's charts, from the receipts (what was charged)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ChargeReceipt, GraphRun


@dataclass(frozen=True)
class DailySpend:
    day: date
    graph_id: str
    credits: int


async def credits_per_day_by_graph(
    session: AsyncSession, *, billing_account_id: str | None, days: int = 30
) -> list[DailySpend]:
    """Charged credits per UTC day and graph over the last ``days`` days (today included);
    ``billing_account_id`` None is every account."""
    day = cast(func.timezone("UTC", ChargeReceipt.created_at), Date)
    stmt = select(day, ChargeReceipt.graph_id, func.sum(ChargeReceipt.charged_credits)).where(
        ChargeReceipt.created_at >= func.date_trunc("day", func.now()) - func.make_interval(0, 0, 0, days - 1)
    )
    if billing_account_id is not None:
        stmt = stmt.where(ChargeReceipt.billing_account_id == billing_account_id)
    stmt = stmt.group_by(day, ChargeReceipt.graph_id).order_by(day, ChargeReceipt.graph_id)
    return [DailySpend(d, g, int(c)) for d, g, c in (await session.execute(stmt)).all()]


async def top_runs_by_cost(
    session: AsyncSession, *, billing_account_id: str | None, limit: int = 10
) -> list[GraphRun]:
    stmt = select(GraphRun).where(GraphRun.cost_credits > 0)
    if billing_account_id is not None:
        stmt = stmt.where(GraphRun.billing_account_id == billing_account_id)
    stmt = stmt.order_by(GraphRun.cost_credits.desc(), GraphRun.run_id).limit(limit)
    return list((await session.execute(stmt)).scalars())
