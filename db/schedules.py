"""Schedules: rows owned by a user; deleting keeps the row (and so the history of its runs)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.trigger_models import Schedule


async def insert_schedule(session: AsyncSession, *, schedule: Schedule) -> Schedule:
    session.add(schedule)
    await session.flush()
    await session.refresh(schedule)
    return schedule


async def get_schedule(
    session: AsyncSession,
    *,
    schedule_id: str,
    owner_user_id: str | None = None,
    include_deleted: bool = False,
) -> Schedule | None:
    stmt = select(Schedule).where(Schedule.id == schedule_id)
    if owner_user_id is not None:
        stmt = stmt.where(Schedule.owner_user_id == owner_user_id)
    if not include_deleted:
        stmt = stmt.where(Schedule.deleted_at.is_(None))
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_schedules(session: AsyncSession, *, owner_user_id: str | None) -> list[Schedule]:
    """A user's live schedules; ``owner_user_id`` None is every user's (the dashboard's admin)."""
    stmt = select(Schedule).where(Schedule.deleted_at.is_(None))
    if owner_user_id is not None:
        stmt = stmt.where(Schedule.owner_user_id == owner_user_id)
    stmt = stmt.order_by(Schedule.created_at.desc(), Schedule.id.desc())
    return list((await session.execute(stmt)).scalars())


async def update_schedule(session: AsyncSession, *, schedule_id: str, values: dict[str, Any]) -> Schedule:
    result = await session.execute(
        update(Schedule)
        .where(Schedule.id == schedule_id)
        .values(**values, updated_at=func.now())
        .returning(Schedule)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one()


async def mark_deleted(session: AsyncSession, *, schedule_id: str) -> None:
    await session.execute(
        update(Schedule)
        .where(Schedule.id == schedule_id, Schedule.deleted_at.is_(None))
        .values(deleted_at=func.now(), enabled=False, updated_at=func.now())
    )
