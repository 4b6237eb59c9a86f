"""Webhook triggers: rows owned by a user; deleting keeps the row (and so its runs' provenance)."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import WebhookTrigger


async def insert_trigger(session: AsyncSession, *, trigger: WebhookTrigger) -> WebhookTrigger:
    session.add(trigger)
    await session.flush()
    await session.refresh(trigger)
    return trigger


async def get_trigger(
    session: AsyncSession, *, trigger_id: str, owner_user_id: str | None
) -> WebhookTrigger | None:
    """A live trigger of ``owner_user_id``; None is any user's (the dashboard's admin)."""
    stmt = select(WebhookTrigger).where(WebhookTrigger.id == trigger_id, WebhookTrigger.deleted_at.is_(None))
    if owner_user_id is not None:
        stmt = stmt.where(WebhookTrigger.owner_user_id == owner_user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_triggers(session: AsyncSession, *, owner_user_id: str | None) -> list[WebhookTrigger]:
    """A user's live triggers; ``owner_user_id`` None is every user's."""
    stmt = select(WebhookTrigger).where(WebhookTrigger.deleted_at.is_(None))
    if owner_user_id is not None:
        stmt = stmt.where(WebhookTrigger.owner_user_id == owner_user_id)
    stmt = stmt.order_by(WebhookTrigger.created_at.desc(), WebhookTrigger.id.desc())
    return list((await session.execute(stmt)).scalars())


async def active_for_source(session: AsyncSession, *, source: str) -> list[WebhookTrigger]:
    """Every live trigger on a source, in a stable order (a delivery answers its runs in it)."""
    stmt = (
        select(WebhookTrigger)
        .where(WebhookTrigger.source == source, WebhookTrigger.deleted_at.is_(None))
        .order_by(WebhookTrigger.created_at, WebhookTrigger.id)
    )
    return list((await session.execute(stmt)).scalars())


async def mark_deleted(session: AsyncSession, *, trigger_id: str) -> None:
    await session.execute(
        update(WebhookTrigger)
        .where(WebhookTrigger.id == trigger_id, WebhookTrigger.deleted_at.is_(None))
        .values(deleted_at=func.now())
    )
