"""A run's own steps, each one statement: its start (hold, thread check, row and first event), its
move to ``running``, the start of an execution (graph version recorded, the run read) and its end
(status, receipts' totals, a finished execution's output, hold released, terminal events).

A status change and the events that report it commit together (a stream reader never sees a status
without its event, nor a ``done`` for a run still running), and these steps run for every run, so
each is one statement. The start runs in the API's transaction; the worker's steps are written for
psycopg directly and run on the statement pool (``Database.single_statement``: autocommit, no
``BEGIN``/``COMMIT`` round trips, no ORM), so each is idempotent (a step that finds its work done
changes nothing). Moves follow ``db.runs.ALLOWED_FROM`` (the database trigger rejects any other); events get
their sequence numbers from the run's ``event_seq``, bumped by the same UPDATE under its row lock
(gap-free, as ``db.events`` does), and listeners get one NOTIFY on the run-events channel.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from db.events import CHANNEL as EVENTS_CHANNEL
from db.events import scrubbed
from db.models import GraphRun
from db.runs import ALLOWED_FROM, RUNS
from runledger.contracts.scrub import scrub

#: Each column's SQL type, for the casts of :func:`record_start`'s insert.
_SQL_TYPES = {c.key: c.type.compile(dialect=postgresql.dialect()) for c in RUNS.columns}  # type: ignore[no-untyped-call]
Event = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class StartRecord:
    """What :func:`record_start` did: ``outcome`` is ``start_run_hold``'s (``reserved``/``exists``:
    the run and its event are written; ``insufficient``, ``no_account``, ``thread_busy``: nothing
    but perhaps the hold, which the caller's rollback undoes)."""

    outcome: str
    available: int | None
    other_run: str | None

    @property
    def recorded(self) -> bool:
        return self.outcome in ("reserved", "exists")


async def record_start(
    session: AsyncSession,
    *,
    run: GraphRun,
    amount: int,
    busy_statuses: frozenset[str],
    event: tuple[str, dict[str, Any]],
) -> StartRecord:
    """A new run's start in one statement, in the caller's transaction: hold ``amount`` credits
    (migration 0016's ``start_run_hold``; the account stays locked until the caller commits), check
    its ``state_key`` thread for a run in ``busy_statuses`` under that lock, and only if both pass
    insert the run and its first event (sequence 1) and notify listeners. ``run`` gets the row's
    ``created_at``."""
    values = {c.key: getattr(run, c.key) for c in RUNS.columns if getattr(run, c.key) is not None}
    values["event_seq"] = 1
    columns = ", ".join(values)
    casts = ", ".join(f"CAST(:v_{k} AS {_SQL_TYPES[k]})" for k in values)
    stmt = text(
        f"""
WITH hold AS (
    SELECT * FROM start_run_hold(
        CAST(:run_id AS uuid), CAST(:account AS uuid), :amount, :state_key, CAST(:busy AS text[])
    )
), run AS (
    INSERT INTO graph_runs ({columns})
    SELECT {casts} FROM hold WHERE hold.outcome IN ('reserved', 'exists')
    RETURNING run_id, created_at
), event AS (
    INSERT INTO run_events (run_id, seq, event, data)
    SELECT run_id, 1, :event, CAST(:event_data AS jsonb) FROM run
    RETURNING run_id
)
SELECT hold.outcome, hold.available, hold.other_run, run.created_at,
       (SELECT pg_notify(:channel, CAST(event.run_id AS text)) FROM event) AS notified
FROM hold LEFT JOIN run ON true
"""
    ).bindparams(
        *(bindparam(f"v_{k}", v, type_=RUNS.c[k].type) for k, v in values.items()),
        bindparam("event_data", event[1], type_=JSONB),
    )
    row = (
        await session.execute(
            stmt,
            {
                "run_id": run.run_id,
                "account": run.billing_account_id,
                "amount": amount,
                "state_key": run.state_key,
                "busy": sorted(busy_statuses),
                "event": event[0],
                "channel": EVENTS_CHANNEL,
            },
        )
    ).one()
    if row.created_at is not None:
        run.created_at = row.created_at
    return StartRecord(
        outcome=row.outcome,
        available=None if row.available is None else int(row.available),
        other_run=None if row.other_run is None else str(row.other_run),
    )


#: ``pending`` -> ``running`` for a run the API started: it already holds its credits (the API made
#: the hold, and the thread check, with the row), it has no grant to check, this worker serves its
#: graph, and no other run of its thread is running or paused. Any other run (scheduled, webhook,
#: granted, missing, finished) does not match and goes through the authorize transaction instead.
_START_RUNNING_SQL = """
WITH moved AS (
    UPDATE graph_runs g
    SET status = 'running', started_at = coalesce(g.started_at, now()), pause_reason = NULL,
        pending_input = NULL, event_seq = g.event_seq + 1
    WHERE g.run_id = CAST(%(run_id)s AS uuid) AND g.status = 'pending' AND g.grant_id IS NULL
      AND g.graph_id = ANY(CAST(%(graphs)s AS text[]))
      AND EXISTS (
          SELECT FROM credit_reservations r WHERE r.run_id = g.run_id AND r.status = 'open'
      )
      AND (g.state_key IS NULL OR NOT EXISTS (
          SELECT FROM graph_runs o
          WHERE o.billing_account_id = g.billing_account_id AND o.state_key = g.state_key
            AND o.run_id <> g.run_id AND o.status = ANY(CAST(%(busy)s AS text[]))
      ))
    RETURNING g.run_id, g.event_seq
), inserted AS (
    INSERT INTO run_events (run_id, seq, event, data)
    SELECT run_id, event_seq, %(event)s, CAST(%(data)s AS jsonb) FROM moved
    RETURNING run_id
)
SELECT pg_notify(%(channel)s, CAST(run_id AS text)) FROM inserted
"""


async def start_running(
    conn: psycopg.AsyncConnection[Any],
    *,
    run_id: str,
    graphs: Iterable[str],
    busy_statuses: frozenset[str],
    event: Event,
) -> bool:
    """Move an API-started run to ``running`` with its status event, if it is one that needs no
    other check (see ``_START_RUNNING_SQL``); False changes nothing."""
    cursor = await conn.execute(
        _START_RUNNING_SQL,
        {
            "run_id": run_id,
            "graphs": sorted(graphs),
            "busy": sorted(busy_statuses),
            "event": event[0],
            "data": json.dumps(event[1]),
            "channel": EVENTS_CHANNEL,
        },
    )
    return await cursor.fetchone() is not None


@dataclass(frozen=True)
class ExecutionRun:
    """What an execution of a run needs of its row."""

    run_id: str
    graph_id: str
    billing_account_id: str
    grant_id: str | None
    state_key: str | None
    connections: dict[str, str] | None
    input: dict[str, Any]
    replay_of: str | None
    replay_from_checkpoint: str | None


#: A running run whose graph this worker serves gets the version it is about to run (a retry on
#: another worker records its own) and is read back, in one statement.
_BEGIN_EXECUTION_SQL = """
UPDATE graph_runs g SET graph_version = CAST(%(versions)s AS jsonb) ->> g.graph_id
WHERE g.run_id = CAST(%(run_id)s AS uuid) AND g.status = 'running'
  AND CAST(%(versions)s AS jsonb) ? g.graph_id
RETURNING CAST(g.run_id AS text), g.graph_id, CAST(g.billing_account_id AS text), CAST(g.grant_id AS text),
          g.state_key, g.connections, g.input, CAST(g.replay_of AS text), g.replay_from_checkpoint
"""


async def begin_execution(
    conn: psycopg.AsyncConnection[Any], *, run_id: str, versions: Mapping[str, str]
) -> ExecutionRun | None:
    """The run, if it is ``running`` and its graph is one of ``versions`` (graph id -> the version
    this worker serves), with that version recorded; None changes nothing."""
    cursor = await conn.execute(
        _BEGIN_EXECUTION_SQL, {"run_id": run_id, "versions": json.dumps(dict(versions))}
    )
    row = await cursor.fetchone()
    return None if row is None else ExecutionRun(*row)


@dataclass(frozen=True)
class FinishedRun:
    """The run as :func:`finish` left it (only returned by the call that moved it)."""

    run_id: str
    graph_id: str
    billing_account_id: str
    status: str
    error_code: str | None
    error_message: str | None
    model_calls: int
    cost_credits: int
    notify_url: str | None


#: The end of a run: its terminal status (with its receipts counted and summed when asked: a failed
#: run still shows what it cost) and, for a finished execution, its output; its hold released
#: whether or not it moved (data-modifying CTEs always run to completion), and, only if it moved,
#: its events. An event's ``output`` and ``cost_credits`` fields are the row's, as this statement
#: leaves it.
_FINISH_SQL = """
WITH totals AS (
    SELECT count(*) AS calls, coalesce(sum(charged_credits), 0) AS credits
    FROM charge_receipts WHERE run_id = CAST(%(run_id)s AS uuid)
), moved AS (
    UPDATE graph_runs g
    SET status = %(status)s, error_code = %(code)s, error_message = %(message)s, pending_input = NULL,
        completed_at = now(), event_seq = g.event_seq + cardinality(CAST(%(events)s AS text[])),
        model_calls = CASE WHEN %(count)s THEN totals.calls ELSE g.model_calls END,
        cost_credits = CASE WHEN %(count)s THEN totals.credits ELSE g.cost_credits END,
        output = CASE WHEN %(has_output)s THEN CAST(%(output)s AS jsonb) ELSE g.output END
    FROM totals
    WHERE g.run_id = CAST(%(run_id)s AS uuid) AND g.status = ANY(CAST(%(from)s AS text[]))
      AND (NOT %(guarded)s OR g.cancel_requested_at IS NULL)
    RETURNING g.run_id, g.graph_id, g.billing_account_id, g.status, g.error_code, g.error_message,
              g.model_calls, g.cost_credits, g.notify_url, g.output,
              g.event_seq - cardinality(CAST(%(events)s AS text[])) AS base
), released AS (
    UPDATE credit_reservations SET status = 'released', released_at = now()
    WHERE run_id = CAST(%(run_id)s AS uuid) AND status = 'open'
    RETURNING run_id
), inserted AS (
    INSERT INTO run_events (run_id, seq, event, data)
    SELECT m.run_id, m.base + e.ord, e.event,
           CASE WHEN e.data ? 'cost_credits'
                THEN jsonb_set(e.data, '{cost_credits}', to_jsonb(m.cost_credits)) ELSE e.data END
           || CASE WHEN e.data ? 'output'
                   THEN jsonb_build_object('output', coalesce(m.output, 'null'::jsonb))
                   ELSE '{}'::jsonb END
    FROM moved m,
         unnest(CAST(%(events)s AS text[]), CAST(%(data)s AS jsonb[])) WITH ORDINALITY AS e(event, data, ord)
    RETURNING run_id
)
SELECT CAST(m.run_id AS text), m.graph_id, CAST(m.billing_account_id AS text), m.status, m.error_code,
       m.error_message, m.model_calls, m.cost_credits, m.notify_url,
       (SELECT pg_notify(%(channel)s, CAST(m.run_id AS text)) FROM inserted LIMIT 1)
FROM moved m
"""


async def finish(
    conn: psycopg.AsyncConnection[Any],
    *,
    run_id: str,
    status: str,
    error_code: str | None,
    error_message: str | None,
    count_charges: bool,
    events: list[Event],
    output: dict[str, Any] | None = None,
    unless_cancel_requested: bool = False,
) -> FinishedRun | None:
    """End a run (see ``_FINISH_SQL``): the run as it was left when this call moved it, None when it
    had already ended (its hold is released either way; ``output``, a finished execution's JSON-safe
    result, is recorded only with the move). ``unless_cancel_requested``: a run marked by
    :func:`request_cancel` is not moved (its graph finished, so its hold is released all the same):
    its workflow records the cancel.
    Error text is scrubbed (it may quote a credential), in the row and in the events."""
    message = scrub.text(error_message) if error_message is not None else None
    cursor = await conn.execute(
        _FINISH_SQL,
        {
            "run_id": run_id,
            "status": status,
            "code": error_code,
            "message": message,
            "count": count_charges,
            "guarded": unless_cancel_requested,
            "has_output": output is not None,
            "output": None if output is None else json.dumps(output),
            "from": list(ALLOWED_FROM[status]),
            "events": [name for name, _ in events],
            "data": [json.dumps(scrubbed(data)) for _, data in events],
            "channel": EVENTS_CHANNEL,
        },
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return FinishedRun(*row[:9])


#: A cancel asked for, on a run that has not ended (see ``request_cancel``).
_REQUEST_CANCEL_SQL = """
UPDATE graph_runs SET cancel_requested_at = coalesce(cancel_requested_at, now())
WHERE run_id = CAST(%(run_id)s AS uuid) AND status <> ALL(CAST(%(terminal)s AS text[]))
RETURNING run_id
"""


async def request_cancel(
    conn: psycopg.AsyncConnection[Any], *, run_id: str, terminal_statuses: Iterable[str]
) -> bool:
    """Mark the run as asked to cancel; False when it has already ended (nothing is marked). From
    then on its execution's own end (:func:`finish` ``unless_cancel_requested``) leaves it to the
    workflow, which records the cancel."""
    cursor = await conn.execute(_REQUEST_CANCEL_SQL, {"run_id": run_id, "terminal": list(terminal_statuses)})
    return await cursor.fetchone() is not None


#: A finished execution's output and its receipts' totals, on a run its execution may not end.
_RECORD_OUTPUT_SQL = """
UPDATE graph_runs SET output = CAST(%(output)s AS jsonb),
    model_calls = (SELECT count(*) FROM charge_receipts WHERE run_id = CAST(%(run_id)s AS uuid)),
    cost_credits = (
        SELECT coalesce(sum(charged_credits), 0) FROM charge_receipts WHERE run_id = CAST(%(run_id)s AS uuid)
    )
WHERE run_id = CAST(%(run_id)s AS uuid)
RETURNING model_calls, cost_credits
"""


async def record_output(
    conn: psycopg.AsyncConnection[Any], *, run_id: str, output: dict[str, Any]
) -> tuple[int, int]:
    """Record an execution's output and its receipts' totals without ending the run (a run asked to
    cancel, whose workflow ends it); returns ``(model_calls, cost_credits)``, (0, 0) for no run."""
    cursor = await conn.execute(_RECORD_OUTPUT_SQL, {"run_id": run_id, "output": json.dumps(output)})
    row = await cursor.fetchone()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))
