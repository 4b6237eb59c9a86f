"""Webhook triggers and the delivery audit log.

Triggers are rows owned by a user; deleting keeps the row (and so its runs' provenance). Their
signing secrets are stored only encrypted (``db.secrets``); ``rotate_secrets`` re-encrypts them all
under the newest key. Deliveries are append-only audit rows (``WebhookDelivery``); a user sees the
rows of their own triggers and the trigger-less refusals on sources where they have a trigger.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.secrets import SecretBox
from db.trigger_models import WebhookDelivery, WebhookTrigger


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


async def active_for_source(session: AsyncSession, *, source: str, limit: int) -> list[WebhookTrigger]:
    """Live triggers on a source, in a stable order (a delivery answers its runs in it), at most
    ``limit`` (creation keeps a source below it)."""
    stmt = (
        select(WebhookTrigger)
        .where(WebhookTrigger.source == source, WebhookTrigger.deleted_at.is_(None))
        .order_by(WebhookTrigger.created_at, WebhookTrigger.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def count_active_for_source(session: AsyncSession, *, source: str) -> int:
    """Counted under a lock on the source's name, so concurrent creations cannot pass the cap."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext("webhook-source:" + source))))
    stmt = select(func.count()).where(WebhookTrigger.source == source, WebhookTrigger.deleted_at.is_(None))
    return int((await session.execute(stmt)).scalar_one())


async def mark_deleted(session: AsyncSession, *, trigger_id: str) -> None:
    await session.execute(
        update(WebhookTrigger)
        .where(WebhookTrigger.id == trigger_id, WebhookTrigger.deleted_at.is_(None))
        .values(deleted_at=func.now())
    )


async def rotate_secrets(session: AsyncSession, *, box: SecretBox) -> int:
    """Re-encrypt every trigger's secret (deleted ones too) under the newest key; returns how many."""
    rows = (
        await session.execute(select(WebhookTrigger.id, WebhookTrigger.secret_encrypted).with_for_update())
    ).all()
    for trigger_id, token in rows:
        await session.execute(
            update(WebhookTrigger)
            .where(WebhookTrigger.id == trigger_id)
            .values(secret_encrypted=box.rotate(token))
        )
    return len(rows)


async def record_deliveries(session: AsyncSession, rows: list[WebhookDelivery]) -> list[WebhookDelivery]:
    session.add_all(rows)
    await session.flush()
    return rows


async def set_delivery_status(session: AsyncSession, *, ids: list[int], http_status: int) -> None:
    """A delivery whose runs were recorded but whose start Temporal refused answered this instead."""
    await session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).values(http_status=http_status)
    )


@dataclass(frozen=True)
class DeliveryFilters:
    source: str | None = None
    trigger_id: str | None = None
    outcome: str | None = None


async def list_deliveries(
    session: AsyncSession,
    *,
    owner_user_id: str,
    filters: DeliveryFilters,
    limit: int,
    before_id: int | None = None,
) -> list[WebhookDelivery]:
    """Newest first, keyset-paginated on ``id``: the rows of the owner's triggers (deleted ones
    too), and refusals without a trigger on a source the owner has (or had) a trigger on."""
    own = select(WebhookTrigger.id).where(WebhookTrigger.owner_user_id == owner_user_id)
    own_sources = select(WebhookTrigger.source).where(WebhookTrigger.owner_user_id == owner_user_id)
    stmt = select(WebhookDelivery).where(
        or_(
            WebhookDelivery.trigger_id.in_(own),
            WebhookDelivery.trigger_id.is_(None) & WebhookDelivery.source.in_(own_sources),
        )
    )
    if filters.source is not None:
        stmt = stmt.where(WebhookDelivery.source == filters.source)
    if filters.trigger_id is not None:
        stmt = stmt.where(WebhookDelivery.trigger_id == filters.trigger_id)
    if filters.outcome is not None:
        stmt = stmt.where(WebhookDelivery.outcome == filters.outcome)
    if before_id is not None:
        stmt = stmt.where(WebhookDelivery.id < before_id)
    stmt = stmt.order_by(WebhookDelivery.id.desc()).limit(limit)
    return list((await session.execute(stmt)).scalars())
