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

from typing import Any

import psycopg

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
