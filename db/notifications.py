"""Attempts of signed run-completion notifications (``contracts.notify``): one row per POST."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.trigger_models import RunNotification


async def record_attempt(
    session: AsyncSession,
    *,
    run_id: str,
    attempt: int,
    url: str,
    http_status: int | None,
    error: str | None,
    delivered: bool,
) -> None:
    session.add(
        RunNotification(
            run_id=run_id, attempt=attempt, url=url, http_status=http_status, error=error, delivered=delivered
        )
    )
    await session.flush()


async def list_for_run(session: AsyncSession, *, run_id: str) -> list[RunNotification]:
    stmt = select(RunNotification).where(RunNotification.run_id == run_id).order_by(RunNotification.id)
    return list((await session.execute(stmt)).scalars())
