"""``GET /api/v1/runs/{run_id}/events``: the run's events as Server-Sent Events (sse-starlette).

``id:`` is the per-run sequence number; ``Last-Event-ID`` (or ``?after=``) resumes exactly after it.
Live and finished runs are served the same way: stored events first, then new ones as the
listener wakes the stream; the stream ends after the terminal ``done``/``error`` event. Keep-alive
pings go out every ``PING_SECONDS``. A vanished client only ends its generator: nothing is held.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import StateDep, UserDep
from api.params import EventSeq, ObjectId, event_seq
from api.routes.runs import own_run
from db import events, runs
from runledger.contracts.runs import TERMINAL_STATUSES

router = APIRouter(prefix="/api/v1", tags=["runs"])

PING_SECONDS = 15
#: Re-read even without a notification, in case one was lost while the listener reconnected.
REREAD_SECONDS = 5.0
TERMINAL_EVENTS = frozenset({"done", "error"})


def _resume_point(last_event_id: str | None, after: int | None) -> int:
    if last_event_id is None:
        return after or 0
    return event_seq(last_event_id, name="Last-Event-ID")


@router.get("/runs/{run_id}/events", response_class=EventSourceResponse)
async def run_events(
    run_id: ObjectId,
    principal: UserDep,
    state: StateDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: EventSeq | None = None,
) -> EventSourceResponse:
    run = await own_run(state.database, principal, run_id)
    start = _resume_point(last_event_id, after)

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
                yield ServerSentEvent(data=json.dumps(event.data), event=event.event, id=str(event.seq))
                if event.event in TERMINAL_EVENTS:
                    return
            if not batch:
                await state.events.wait(run.run_id, REREAD_SECONDS)

    return EventSourceResponse(stream(), ping=PING_SECONDS, headers={"Cache-Control": "no-cache"})
