"""Dashboard pages of schedules and webhook triggers.

Schedules: the list, and a detail with the next five run times in the schedule's own time zone
(Temporal's ``next_action_times``), its last runs, and pause / resume / trigger-now, which go through
``api.schedule_service`` and ``api.temporal_schedules`` exactly as ``PATCH`` and ``POST .../trigger``
do. Webhook triggers: the list and a detail with the trigger's runs (never its secret). Another
user's schedule or trigger is a 404 page.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response

from api import schedule_service, temporal_schedules
from api.deps import StateDep
from api.errors import NotFound, ServiceUnavailable
from api.ui.auth import FormViewerDep, ViewerDep
from api.ui.render import page
from db import runs, schedules, webhooks
from db.runs import RunFilters
from runledger.contracts.errors import ErrorCode

router = APIRouter(prefix="/ui", include_in_schema=False)

RECENT_RUNS = 10


@router.get("/schedules")
async def schedule_list(viewer: ViewerDep, state: StateDep) -> Response:
    async with state.database.transaction() as session:
        rows = await schedules.list_schedules(session, owner_user_id=viewer.user_id)
    return page("schedules.html", viewer=viewer, schedules=rows)


@router.get("/schedules/{schedule_id}")
async def schedule_detail(
    schedule_id: str, viewer: ViewerDep, state: StateDep, notice: str | None = None
) -> Response:
    row = await schedule_service.scoped_schedule(state.database, viewer.user_id, schedule_id)
    upcoming: list[datetime] = []
    paused: bool | None = None
    temporal_error = None
    try:
        description = await temporal_schedules.describe(state.temporal, row)
        upcoming = temporal_schedules.next_times(description, limit=5)
        paused = description.schedule.state.paused
    except ServiceUnavailable as exc:  # the page still shows what Postgres knows
        temporal_error = exc.message
    async with state.database.transaction() as session:
        recent = await runs.list_runs(
            session,
            billing_account_id=row.billing_account_id,
            filters=RunFilters(schedule_id=row.id),
            limit=RECENT_RUNS,
        )
    return page(
        "schedule.html",
        viewer=viewer,
        schedule=row,
        upcoming=upcoming,
        paused=paused,
        temporal_error=temporal_error,
        recent=recent,
        notice=notice,
        temporal_ui=f"{state.settings.temporal_ui_base}/namespaces/{state.settings.temporal_namespace}"
        f"/schedules/{row.temporal_schedule_id}",
    )


@router.post("/schedules/{schedule_id}/enabled")
async def set_enabled(
    schedule_id: str, viewer: FormViewerDep, state: StateDep, enabled: Annotated[str, Form()] = ""
) -> Response:
    row = await schedule_service.scoped_schedule(state.database, viewer.user_id, schedule_id)
    wanted = enabled == "true"
    await schedule_service.apply_changes(
        state.database,
        state.temporal,
        task_queue=state.settings.temporal_task_queue,
        row=row,
        changes={"enabled": wanted},
    )
    notice = "resumed" if wanted else "paused"
    return RedirectResponse(f"/ui/schedules/{row.id}?notice={notice}", status_code=303)


@router.post("/schedules/{schedule_id}/trigger")
async def trigger_now(schedule_id: str, viewer: FormViewerDep, state: StateDep) -> Response:
    row = await schedule_service.scoped_schedule(state.database, viewer.user_id, schedule_id)
    await temporal_schedules.trigger(state.temporal, row)
    return RedirectResponse(f"/ui/schedules/{row.id}?notice=triggered", status_code=303)


@router.get("/triggers")
async def trigger_list(viewer: ViewerDep, state: StateDep) -> Response:
    async with state.database.transaction() as session:
        rows = await webhooks.list_triggers(session, owner_user_id=viewer.user_id)
    return page("triggers.html", viewer=viewer, triggers=rows)


@router.get("/triggers/{trigger_id}")
async def trigger_detail(trigger_id: str, viewer: ViewerDep, state: StateDep) -> Response:
    missing = NotFound(f"webhook trigger {trigger_id} not found", code=ErrorCode.WEBHOOK_TRIGGER_NOT_FOUND)
    try:
        uuid.UUID(trigger_id)
    except ValueError:
        raise missing from None
    async with state.database.transaction() as session:
        row = await webhooks.get_trigger(session, trigger_id=trigger_id, owner_user_id=viewer.user_id)
        if row is None:
            raise missing
        recent = await runs.list_runs(
            session,
            billing_account_id=row.billing_account_id,
            filters=RunFilters(webhook_trigger_id=row.id),
            limit=RECENT_RUNS,
        )
        # The trigger's delivery audit log, as GET /api/v1/webhook-deliveries?trigger_id= lists it.
        deliveries = await webhooks.list_deliveries(
            session,
            owner_user_id=row.owner_user_id,
            filters=webhooks.DeliveryFilters(trigger_id=row.id),
            limit=RECENT_RUNS,
        )
    return page("trigger.html", viewer=viewer, trigger=row, recent=recent, deliveries=deliveries)
