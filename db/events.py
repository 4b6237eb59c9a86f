"""Run events: append in per-run sequence order and notify listeners; read after a sequence number.

Appends bump ``graph_runs.event_seq`` under the run's row lock, so sequence numbers are gap-free and
ordered across workers. Each append ends with ``pg_notify('run_events', run_id)`` in the same
transaction: listeners wake only for committed events. A charge's ``usage`` event is appended the
same way by the ledger's charge statement (``db.ledger``), so it commits with the debit it reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import GraphRun, RunEvent

CHANNEL = "run_events"


async def append(
    session: AsyncSession, *, run_id: str, events: Sequence[tuple[str, dict[str, Any]]]
) -> list[int]:
    if not events:
        return []
    last = (
        await session.execute(
            update(GraphRun)
            .where(GraphRun.run_id == run_id)
            .values(event_seq=GraphRun.event_seq + len(events))
            .returning(GraphRun.event_seq)
        )
    ).scalar_one()
    first = last - len(events) + 1
    await session.execute(
        insert(RunEvent).values(
            [
                {"run_id": run_id, "seq": first + i, "event": name, "data": data}
                for i, (name, data) in enumerate(events)
            ]
        )
    )
    await session.execute(text("SELECT pg_notify(:channel, :run_id)"), {"channel": CHANNEL, "run_id": run_id})
    return list(range(first, last + 1))


async def read_after(
    session: AsyncSession, *, run_id: str, after_seq: int, limit: int = 500
) -> list[RunEvent]:
    stmt = (
        select(RunEvent)
        .where(RunEvent.run_id == run_id, RunEvent.seq > after_seq)
        .order_by(RunEvent.seq)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def prune(session: AsyncSession, *, older_than_days: int) -> int:
    """Delete the events of runs that finished more than ``older_than_days`` ago (the run rows,
    receipts and ledger stay: events are a view of the run, not its record)."""
    finished = select(GraphRun.run_id).where(
        GraphRun.completed_at < func.now() - func.make_interval(0, 0, 0, older_than_days)
    )
    result = await session.execute(delete(RunEvent).where(RunEvent.run_id.in_(finished)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
