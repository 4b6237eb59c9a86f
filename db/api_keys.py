"""A user's API keys: add, list, revoke (soft: ``revoked_at`` set once, the row kept). Keys are
stored as hashes only; :func:`db.accounts.principal_for_key` refuses a revoked key, so a revocation
takes effect on the next request."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiKey


async def add_key(
    session: AsyncSession, *, user_id: str, name: str | None, key_prefix: str, key_hash: str
) -> ApiKey:
    key = ApiKey(user_id=user_id, name=name, key_prefix=key_prefix, key_hash=key_hash)
    session.add(key)
    await session.flush()
    await session.refresh(key)
    return key


async def list_keys(session: AsyncSession, *, user_id: str) -> list[ApiKey]:
    rows = await session.execute(
        select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at, ApiKey.id)
    )
    return list(rows.scalars())


async def get_key(session: AsyncSession, *, user_id: str, key_id: str) -> ApiKey | None:
    row = await session.execute(select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id))
    return row.scalar_one_or_none()


async def revoke_keys(session: AsyncSession, *, user_id: str, key_id: str | None = None) -> int:
    """Revoke one of the user's keys (``key_id``) or all of them; already revoked keys keep their
    first ``revoked_at``. Returns how many keys were revoked now."""
    stmt = update(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
    if key_id is not None:
        stmt = stmt.where(ApiKey.id == key_id)
    result = await session.execute(stmt.values(revoked_at=func.now()))
    return int(getattr(result, "rowcount", 0) or 0)
