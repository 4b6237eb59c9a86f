"""A run's events as Server-Sent Events (sse-starlette), shared by ``GET /api/v1/runs/{id}/events``
and the dashboard's live timeline (``/ui/runs/{id}/events``, the same stream behind the session
cookie, since a browser's ``EventSource`` cannot send a bearer header).

``id:`` is the per-run sequence number; ``Last-Event-ID`` (or ``?after=``) resumes exactly after it.
Live and finished runs are served the same way: stored events first, then new ones as the
listener wakes the stream; the stream ends after the terminal ``done``/``error`` event. Keep-alive
pings go out every ``PING_SECONDS``. A vanished client only ends its generator: nothing is held.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import AppState
from api.params import event_seq
from db import events, runs
from db.models import GraphRun
from runledger.contracts.runs import TERMINAL_STATUSES

PING_SECONDS = 15
#: Re-read even without a notification, in case one was lost while the listener reconnected.
REREAD_SECONDS = 5.0
TERMINAL_EVENTS = frozenset({"done", "error"})


def resume_point(last_event_id: str | None, after: int | None) -> int:
    """Where a stream resumes: after ``Last-Event-ID`` if sent (422 unless an event id), else
    after ``?after=``, else from the start."""
    if last_event_id is None or not last_event_id.strip():
        # An empty Last-Event-ID is "no last id" (the EventSource spec), not an error.
        return after or 0
    return event_seq(last_event_id, name="Last-Event-ID")


#: Reshapes an event's data for a reader (the dashboard's timeline rows); the event name, id and
#: order stay the stream's.
Present = Callable[[int, str, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class RunEventView:
    seq: int
    event: str
    data: dict[str, Any]


async def follow_run(state: AppState, run_id: str, *, after: int = 0) -> AsyncIterator[RunEventView]:
    """The run's events after ``after``, in order — stored ones first, then live ones as they
    commit — ending after the terminal ``done``/``error`` event, or when a finished run has no more
    (e.g. pruned)."""
    seen = after
    while True:
        async with state.database.transaction() as session:
            batch = await events.read_after(session, run_id=run_id, after_seq=seen)
            if not batch:
                current = await runs.get_run(session, run_id=run_id)
                if current is None:
                    return
                if current.status in TERMINAL_STATUSES:
                    # The run's end commits its last events with its status, possibly between the
                    # read above and this one (each statement sees what had committed when it
                    # began): read once more, after the status, before concluding there are none.
                    batch = await events.read_after(session, run_id=run_id, after_seq=seen)
                    if not batch:
                        return
        for row in batch:
            seen = row.seq
            yield RunEventView(seq=row.seq, event=row.event, data=dict(row.data or {}))
            if row.event in TERMINAL_EVENTS:
                return
        if not batch:
            await state.events.wait(run_id, REREAD_SECONDS)


def run_event_response(
    state: AppState, run: GraphRun, start: int, present: Present | None = None
) -> EventSourceResponse:
    async def stream() -> AsyncIterator[ServerSentEvent]:
        async for event in follow_run(state, run.run_id, after=start):
            data = event.data if present is None else present(event.seq, event.event, event.data)
            yield ServerSentEvent(data=json.dumps(data), event=event.event, id=str(event.seq))

    return EventSourceResponse(stream(), ping=PING_SECONDS, headers={"Cache-Control": "no-cache"})
