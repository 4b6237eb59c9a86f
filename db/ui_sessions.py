"""Dashboard sessions: stored by the SHA-256 of their cookie token, expired by the database clock.

A session names the credential it signed in with (``key_hash``: the hash of a user's API key, or of
the admin token); the caller re-resolves that on every request, so revoking the key or rotating the
admin token ends the session too. Expired rows are deleted as sessions are created.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.ui_models import UiSession


async def create(
    session: AsyncSession, *, token_hash: str, key_hash: str, is_admin: bool, ttl_seconds: int
) -> None:
    await session.execute(delete(UiSession).where(UiSession.expires_at <= func.now()))
    session.add(
        UiSession(
            token_hash=token_hash,
            key_hash=key_hash,
            is_admin=is_admin,
            expires_at=func.now() + func.make_interval(0, 0, 0, 0, 0, 0, ttl_seconds),
        )
    )
    await session.flush()


async def live(session: AsyncSession, *, token_hash: str) -> UiSession | None:
    """The session if it exists and has not expired."""
    stmt = select(UiSession).where(UiSession.token_hash == token_hash, UiSession.expires_at > func.now())
    return (await session.execute(stmt)).scalar_one_or_none()


async def end(session: AsyncSession, *, token_hash: str) -> None:
    await session.execute(delete(UiSession).where(UiSession.token_hash == token_hash))
