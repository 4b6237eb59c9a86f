"""``GET /api/v1/runs/{run_id}/events``: the run's events as Server-Sent Events; the stream itself is
``api.event_stream`` (shared with the dashboard's live timeline)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from sse_starlette import EventSourceResponse

from api.deps import StateDep, UserDep
from api.event_stream import resume_point, run_event_response
from api.params import EventSeq, ObjectId
from api.run_service import own_run

router = APIRouter(prefix="/api/v1", tags=["runs"])


@router.get("/runs/{run_id}/events", response_class=EventSourceResponse)
async def run_events(
    run_id: ObjectId,
    principal: UserDep,
    state: StateDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: EventSeq | None = None,
) -> EventSourceResponse:
    run = await own_run(state.database, principal, run_id)
    return run_event_response(state, run, resume_point(last_event_id, after))
