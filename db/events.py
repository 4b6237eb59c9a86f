"""Run events: append in per-run sequence order and notify listeners; read after a sequence number.

Appends bump ``graph_runs.event_seq`` under the run's row lock, so sequence numbers are gap-free and
ordered across workers. Each append ends with ``pg_notify('run_events', ...)`` in the same
transaction: listeners wake only for committed events. The payload is a comma-separated list of
run ids (one id for a single run's append; :func:`append_many` notifies once per batch). A charge's
``usage`` event is appended the same way by the ledger's charge statement (``db.ledger``), so it
commits with the debit it reports.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.errors import NotFoundError
from db.models import GraphRun, RunEvent
from db.session import driver_connection
from runledger.contracts.scrub import scrub

CHANNEL = "run_events"


def scrubbed(data: dict[str, Any]) -> dict[str, Any]:
    message = data.get("message")
    return {**data, "message": scrub.text(message)} if isinstance(message, str) else data


async def append(session: AsyncSession, *, run_id: str, events: Sequence[tuple[str, dict[str, Any]]]) -> int:
    """Append one run's events inside the session's transaction (they commit with what the
    boundary writes beside them, e.g. the status change they report), as one statement: the batched
    writer's (:func:`append_many`) on the session's own connection. Returns how many were written."""
    if not events:
        return 0
    # The statement runs on the driver connection: rows the session holds unflushed (a run just
    # added) must reach it first.
    await session.flush()
    written = await append_many(
        await driver_connection(session),
        # Error text (a tool's failure, a run's error) may quote a credential: scrubbed like telemetry.
        events=[(run_id, name, scrubbed(data)) for name, data in events],
    )
    if written != len(events):
        raise NotFoundError("run", run_id)
    return written


#: Many runs' events in one statement (the worker's batched event writer): lock the runs' rows in
#: run-id order (two writers can never deadlock on each other), bump each run's counter by its count,
#: insert the events at their gap-free sequence numbers, and notify once per batch (ids in groups of
#: 200, which keeps the payload under Postgres' 8,000-byte limit). Runs that no longer exist are
#: skipped. Written for psycopg directly: it is the hot path of streamed model output.
_APPEND_MANY_SQL = """
WITH batch AS (
    SELECT run_id, ord, event, data
    FROM unnest(CAST(%(run_ids)s AS uuid[]), CAST(%(events)s AS text[]), CAST(%(data)s AS jsonb[]))
         WITH ORDINALITY AS b(run_id, event, data, ord)
), counts AS (
    SELECT run_id, count(*) AS n FROM batch GROUP BY run_id
), locked AS (
    SELECT g.run_id FROM graph_runs g JOIN counts USING (run_id) ORDER BY g.run_id FOR UPDATE OF g
), bumped AS (
    UPDATE graph_runs g SET event_seq = g.event_seq + counts.n
    FROM counts JOIN locked USING (run_id)
    WHERE g.run_id = counts.run_id
    RETURNING g.run_id, g.event_seq - counts.n AS base
), inserted AS (
    INSERT INTO run_events (run_id, seq, event, data)
    SELECT b.run_id, bumped.base + row_number() OVER (PARTITION BY b.run_id ORDER BY b.ord), b.event, b.data
    FROM batch b JOIN bumped USING (run_id)
    RETURNING run_id
), groups AS (
    SELECT run_id, (row_number() OVER (ORDER BY run_id) - 1) / 200 AS grp FROM bumped
)
SELECT pg_notify(%(channel)s, string_agg(run_id::text, ',')), (SELECT count(*) FROM inserted)
FROM groups GROUP BY grp
"""


async def append_many(
    conn: psycopg.AsyncConnection[Any], *, events: Sequence[tuple[str, str, dict[str, Any]]]
) -> int:
    """Append ``(run_id, event, data)`` rows of any number of runs in one statement, its own
    transaction on a ``Database.single_statement()`` connection; events of one run keep their
    order. Returns how many were written (events of runs that do not exist are dropped)."""
    if not events:
        return 0
    cursor = await conn.execute(
        _APPEND_MANY_SQL,
        {
            "run_ids": [run_id for run_id, _, _ in events],
            "events": [name for _, name, _ in events],
            "data": [json.dumps(data) for _, _, data in events],
            "channel": CHANNEL,
        },
    )
    rows = await cursor.fetchall()
    return int(rows[0][1]) if rows else 0


#: A ``step`` event with the run's cost so far, in one statement: the run's receipts are summed, its
#: counter bumped under its row lock, the event inserted and listeners notified. A step ends often
#: (every super-step of every run), so it takes one round trip on the statement pool instead of a
#: transaction of four statements. Idempotent per checkpoint (the statement pool may run it twice):
#: a step already recorded is not appended again.
_APPEND_STEP_SQL = """
WITH totals AS (
    SELECT count(*) AS calls, coalesce(sum(charged_credits), 0) AS credits
    FROM charge_receipts WHERE run_id = CAST(%(run_id)s AS uuid)
), bumped AS (
    UPDATE graph_runs SET event_seq = event_seq + 1
    WHERE run_id = CAST(%(run_id)s AS uuid) AND NOT EXISTS (
        SELECT FROM run_events
        WHERE run_id = CAST(%(run_id)s AS uuid) AND event = 'step'
          AND data->>'checkpoint_id' = %(checkpoint_id)s
    )
    RETURNING event_seq
), inserted AS (
    INSERT INTO run_events (run_id, seq, event, data)
    SELECT CAST(%(run_id)s AS uuid), bumped.event_seq, 'step',
           CAST(%(data)s AS jsonb)
           || jsonb_build_object('cost_credits_so_far', totals.credits, 'model_calls_so_far', totals.calls)
    FROM bumped, totals
    RETURNING seq
)
SELECT pg_notify(CAST(%(channel)s AS text), CAST(%(run_id)s AS text)), seq FROM inserted
"""


async def append_step(conn: psycopg.AsyncConnection[Any], *, run_id: str, data: dict[str, Any]) -> int | None:
    """Append a run's ``step`` event (``data`` plus ``cost_credits_so_far`` and
    ``model_calls_so_far`` from its receipts) on a ``Database.single_statement()`` connection;
    returns its sequence number (None when the run does not exist or the step is recorded)."""
    cursor = await conn.execute(
        _APPEND_STEP_SQL,
        {
            "run_id": run_id,
            "checkpoint_id": str(data["checkpoint_id"]),
            "data": json.dumps(data),
            "channel": CHANNEL,
        },
    )
    row = await cursor.fetchone()
    return None if row is None else int(row[1])


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


async def of_kind(session: AsyncSession, *, run_id: str, event: str, limit: int = 1000) -> list[RunEvent]:
    """A run's events of one kind (e.g. its ``step`` events), in sequence order."""
    stmt = (
        select(RunEvent)
        .where(RunEvent.run_id == run_id, RunEvent.event == event)
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
