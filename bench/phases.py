"""Where a burst's runs spent their time, read from the rows each run leaves in Postgres.

Contract: read-only. For a set of run ids, the p50 and p99 (seconds) of each phase of a run, in order:

- ``queued``: the start committed (``graph_runs.created_at``) → the worker authorized it
  (``started_at``): the Temporal start, the workflow task and the execution's dispatch;
- ``to call``: authorized → the pending record of its first model call (the graph's start, its
  checkpoint read);
- ``at provider``: the pending record → the call settled (the provider's delay and stream, the
  charge);
- ``to end``: the last call settled → the run's end committed (``completed_at``).

The runs' clocks are Postgres's, so the phases of one run add up to its start → end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.stats import pct

PHASES = ("queued", "to call", "at provider", "to end")

_PHASES_SQL = """
WITH r AS (
  SELECT g.created_at, g.started_at, g.completed_at,
         min(c.created_at) AS first_call, max(c.settled_at) AS last_settled
  FROM graph_runs g JOIN model_calls c ON c.run_id = g.run_id
  WHERE g.run_id = ANY(%(ids)s::uuid[])
  GROUP BY g.run_id
), d AS (
  SELECT extract(epoch FROM started_at - created_at) AS queued,
         extract(epoch FROM first_call - started_at) AS to_call,
         extract(epoch FROM last_settled - first_call) AS at_provider,
         extract(epoch FROM completed_at - last_settled) AS to_end
  FROM r
)
SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY queued),
       percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY to_call),
       percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY at_provider),
       percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY to_end)
FROM d
"""


async def run_phases(database_url: str, run_ids: list[str]) -> dict[str, Any]:
    """``{phase: [p50_s, p99_s]}`` over the runs that made a model call."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(_PHASES_SQL, {"ids": run_ids})
        row = await cur.fetchone()
    if row is None or row[0] is None:
        return {}
    return {name: [float(v) for v in values] for name, values in zip(PHASES, row, strict=True)}


#: Runs whose history is read for the Temporal side of ``queued`` (every history is one RPC).
HISTORY_SAMPLE = 60

_QUEUE_EVENTS = {
    "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED": "workflow started",
    "EVENT_TYPE_WORKFLOW_TASK_STARTED": "workflow task started",
    "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED": "activity scheduled",
    "EVENT_TYPE_ACTIVITY_TASK_STARTED": "activity started",
}


async def _history(client: Client, workflow_id: str) -> AsyncIterator[tuple[str, datetime]]:
    """A workflow's history as ``(event type name, event time in UTC)``."""
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        yield EventType.Name(event.event_type), event.event_time.ToDatetime(UTC)


async def queue_phases(client: Client, database_url: str, run_ids: list[str]) -> dict[str, Any]:
    """The Temporal side of ``queued`` for a sample of runs: the start committed → each of the
    history's first events (``workflow started``, ``workflow task started``, ``activity scheduled``,
    ``activity started``), then ``authorized``: ``steps`` is ``{step: [p50_s, p99_s]}`` of each
    step's offset from the commit, ``history_events`` the p50 and max length of those histories.
    Temporal's and Postgres's clocks are this machine's one clock."""
    sample = run_ids[:: max(1, len(run_ids) // HISTORY_SAMPLE)][:HISTORY_SAMPLE]
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT run_id::text, workflow_id, created_at, started_at FROM graph_runs"
            " WHERE run_id = ANY(%(ids)s::uuid[])",
            {"ids": sample},
        )
        rows = await cur.fetchall()
    offsets: dict[str, list[float]] = {name: [] for name in [*_QUEUE_EVENTS.values(), "authorized"]}
    lengths: list[float] = []
    for _run_id, workflow_id, created_at, started_at in rows:
        seen: set[str] = set()
        length = 0
        async for event_type, at in _history(client, workflow_id):
            length += 1
            name = _QUEUE_EVENTS.get(event_type)
            if name and name not in seen:
                seen.add(name)
                offsets[name].append((at - created_at).total_seconds())
        lengths.append(length)
        if started_at is not None:
            offsets["authorized"].append((started_at - created_at).total_seconds())
    return {
        "steps": {name: [pct(v, 50), pct(v, 99)] for name, v in offsets.items() if v},
        "history_events": {"p50": pct(lengths, 50), "max": max(lengths)} if lengths else {},
    }


async def peak_activities(client: Client, workflow_ids: list[str]) -> int:
    """The most activities of these workflows that ran at once (their histories' started and
    completed times): bare Temporal's counterpart of the provider's peak concurrent calls."""
    edges: list[tuple[float, int]] = []
    for workflow_id in workflow_ids:
        async for event_type, at in _history(client, workflow_id):
            if event_type == "EVENT_TYPE_ACTIVITY_TASK_STARTED":
                edges.append((at.timestamp(), 1))
            elif event_type in ("EVENT_TYPE_ACTIVITY_TASK_COMPLETED", "EVENT_TYPE_ACTIVITY_TASK_FAILED"):
                edges.append((at.timestamp(), -1))
    running = peak = 0
    for _, step in sorted(edges):  # at one instant an end sorts before a start
        running += step
        peak = max(peak, running)
    return peak
