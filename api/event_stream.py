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
    if last_event_id is None:
        return after or 0
    return event_seq(last_event_id, name="Last-Event-ID")


#: Reshapes an event's data for a reader (the dashboard's timeline rows); the event name, id and
#: order stay the stream's.
Present = Callable[[int, str, dict[str, Any]], dict[str, Any]]


def run_event_response(
    state: AppState, run: GraphRun, start: int, present: Present | None = None
) -> EventSourceResponse:
    async def stream() -> AsyncIterator[ServerSentEvent]:
        seen = start
        while True:
            async with state.database.transaction() as session:
                batch = await events.read_after(session, run_id=run.run_id, after_seq=seen)
                if not batch:
                    current = await runs.get_run(session, run_id=run.run_id)
                    # The terminal event commits with the terminal status: nothing can follow it.
                    if current is None or current.status in TERMINAL_STATUSES:
                        return
            for event in batch:
                seen = event.seq
                data = event.data if present is None else present(event.seq, event.event, event.data)
                yield ServerSentEvent(data=json.dumps(data), event=event.event, id=str(event.seq))
                if event.event in TERMINAL_EVENTS:
                    return
            if not batch:
                await state.events.wait(run.run_id, REREAD_SECONDS)

    return EventSourceResponse(stream(), ping=PING_SECONDS, headers={"Cache-Control": "no-cache"})
