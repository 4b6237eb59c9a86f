"""Execution grants: create, list, revoke (soft) and read for validation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.trigger_models import ExecutionGrant
from runledger.contracts.grants import GrantView


def view(grant: ExecutionGrant) -> GrantView:
    return GrantView(
        grant_id=grant.id,
        billing_account_id=grant.billing_account_id,
        scopes=tuple(grant.scopes),
        expires_at=grant.expires_at,
        revoked_at=grant.revoked_at,
        max_credits=grant.max_credits,
        spent_credits=grant.spent_credits,
    )


async def create_grant(
    session: AsyncSession,
    *,
    user_id: str,
    billing_account_id: str,
    scopes: list[str],
    expires_at: datetime | None,
    max_credits: int | None,
    connections: dict[str, str] | None = None,
) -> ExecutionGrant:
    grant = ExecutionGrant(
        user_id=user_id,
        billing_account_id=billing_account_id,
        scopes=scopes,
        expires_at=expires_at,
        max_credits=max_credits,
        connections=connections or {},
    )
    session.add(grant)
    await session.flush()
    await session.refresh(grant)
    return grant


async def get_grant(
    session: AsyncSession, *, grant_id: str, user_id: str | None = None
) -> ExecutionGrant | None:
    stmt = select(ExecutionGrant).where(ExecutionGrant.id == grant_id)
    if user_id is not None:
        stmt = stmt.where(ExecutionGrant.user_id == user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_grants(session: AsyncSession, *, user_id: str) -> list[ExecutionGrant]:
    stmt = (
        select(ExecutionGrant)
        .where(ExecutionGrant.user_id == user_id)
        .order_by(ExecutionGrant.created_at.desc(), ExecutionGrant.id.desc())
    )
    return list((await session.execute(stmt)).scalars())


async def revoke_grant(session: AsyncSession, *, grant_id: str) -> None:
    """Soft revoke; revoking twice keeps the first revocation time."""
    await session.execute(
        update(ExecutionGrant)
        .where(ExecutionGrant.id == grant_id, ExecutionGrant.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def database_now(session: AsyncSession) -> datetime:
    """The database clock: grant expiry is judged by one clock for every process."""
    now: datetime = (await session.execute(select(func.now()))).scalar_one()
    return now
