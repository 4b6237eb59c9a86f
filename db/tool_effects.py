"""Recorded write-tool results (EXACTLY_ONCE_TOOL_EFFECTS), keyed by the tool effect key.

The first record under a key wins (``ON CONFLICT DO NOTHING``) and is what every caller gets back, so
two attempts that raced through the same call still continue with one result.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ToolEffect


async def recorded(session: AsyncSession, *, effect_key: str) -> Any | None:
    """The recorded result under this key (wrapped, ``{"value": ...}``), or None."""
    row = (
        await session.execute(select(ToolEffect.result).where(ToolEffect.effect_key == effect_key))
    ).one_or_none()
    return None if row is None else {"value": row[0]}


async def record(
    session: AsyncSession,
    *,
    effect_key: str,
    run_id: str,
    tool_id: str,
    args: dict[str, Any],
    result: Any,
    attempt: int,
) -> Any:
    """Record a result unless the key has one; return the recorded result."""
    await session.execute(
        insert(ToolEffect)
        .values(
            effect_key=effect_key, run_id=run_id, tool_id=tool_id, args=args, result=result, attempt=attempt
        )
        .on_conflict_do_nothing(index_elements=["effect_key"])
    )
    stored = await recorded(session, effect_key=effect_key)
    assert stored is not None
    return stored["value"]


async def for_run(session: AsyncSession, *, run_id: str) -> list[ToolEffect]:
    return list(
        (
            await session.execute(
                select(ToolEffect).where(ToolEffect.run_id == run_id).order_by(ToolEffect.created_at)
            )
        ).scalars()
    )
