"""Schedules: create (all-or-nothing with its grant and Temporal schedule), list, detail, PATCH
(every change reaches Temporal), DELETE (history kept), trigger-now."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response, status

from api import schedule_service, temporal_schedules
from api.catalog import published_graph, published_graphs, validate_input
from api.deps import StateDep, UserDep
from api.errors import Unprocessable
from api.notify_urls import check_notify_url
from api.openapi import errors
from api.params import ObjectId
from api.presenters import run_out
from api.routes.grants import grant_for_trigger
from api.schedule_rules import validate_cron, validate_timezone
from api.trigger_schemas import (
    CreateScheduleRequest,
    PatchScheduleRequest,
    ScheduleDetail,
    ScheduleListResponse,
    ScheduleOut,
    TriggerResponse,
)
from db import grants, runs, schedules
from db.accounts import Principal
from db.session import Database
from db.trigger_models import Schedule
from runledger.contracts import ids
from runledger.contracts.schedules import Overlap

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])


def schedule_out(row: Schedule, next_run_at: Any = None) -> ScheduleOut:
    return ScheduleOut(
        schedule_id=row.id,
        graph_id=row.graph_id,
        input=row.input,
        cron=row.cron,
        timezone=row.timezone,
        enabled=row.enabled,
        overlap=Overlap(row.overlap),
        catchup_window_seconds=row.catchup_window_seconds,
        grant_id=row.grant_id,
        temporal_schedule_id=row.temporal_schedule_id,
        notify_url=row.notify_url,
        created_at=row.created_at,
        updated_at=row.updated_at,
        next_run_at=next_run_at,
    )


async def _own_schedule(database: Database, principal: Principal, schedule_id: str) -> Schedule:
    return await schedule_service.scoped_schedule(database, principal.user_id, schedule_id)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ScheduleOut, responses=errors(404, 409, 503)
)
async def create_schedule(body: CreateScheduleRequest, principal: UserDep, state: StateDep) -> ScheduleOut:
    cron = validate_cron(body.cron)
    timezone = validate_timezone(body.timezone)
    if body.notify_url is not None:
        check_notify_url(state.settings, body.notify_url)
    schedule_id = str(uuid.uuid4())
    async with state.database.transaction() as session:
        validate_input(await published_graph(session, body.graph_id), body.input)
        grant, owns_grant = await grant_for_trigger(
            session, principal, graph_id=body.graph_id, grant_id=body.grant_id
        )
        row = await schedules.insert_schedule(
            session,
            schedule=Schedule(
                id=schedule_id,
                owner_user_id=principal.user_id,
                billing_account_id=grant.billing_account_id,
                grant_id=grant.id,
                owns_grant=owns_grant,
                graph_id=body.graph_id,
                input=body.input,
                cron=cron,
                timezone=timezone,
                enabled=body.enabled,
                overlap=body.overlap,
                catchup_window_seconds=body.catchup_window_seconds,
                temporal_schedule_id=ids.temporal_schedule_id(schedule_id),
                notify_url=body.notify_url,
            ),
        )
        # Last step inside the transaction: if Temporal refuses, neither the row nor the grant remains.
        await temporal_schedules.create(state.temporal, row, task_queue=state.settings.temporal_task_queue)
    description = await temporal_schedules.describe(state.temporal, row)
    upcoming = temporal_schedules.next_times(description, limit=1)
    return schedule_out(row, upcoming[0] if upcoming else None)


@router.get("", response_model=ScheduleListResponse)
async def list_schedules(principal: UserDep, state: StateDep) -> ScheduleListResponse:
    async with state.database.transaction() as session:
        rows = await schedules.list_schedules(session, owner_user_id=principal.user_id)
    return ScheduleListResponse(schedules=[schedule_out(r) for r in rows])


@router.get("/{schedule_id}", response_model=ScheduleDetail, responses=errors(503))
async def get_schedule(schedule_id: ObjectId, principal: UserDep, state: StateDep) -> ScheduleDetail:
    row = await _own_schedule(state.database, principal, schedule_id)
    description = await temporal_schedules.describe(state.temporal, row)
    upcoming = temporal_schedules.next_times(description)
    async with state.database.transaction() as session:
        recent = await runs.list_runs(
            session,
            billing_account_id=row.billing_account_id,
            filters=runs.RunFilters(schedule_id=row.id),
            limit=10,
        )
    base = schedule_out(row, upcoming[0] if upcoming else None)
    return ScheduleDetail(
        **base.model_dump(),
        paused=description.schedule.state.paused,
        next_run_times=upcoming,
        recent_runs=[run_out(state.settings, r) for r in recent],
        temporal_ui=f"{state.settings.temporal_ui_base}/namespaces/{state.settings.temporal_namespace}"
        f"/schedules/{row.temporal_schedule_id}",
    )


@router.patch("/{schedule_id}", response_model=ScheduleOut, responses=errors(503))
async def patch_schedule(
    schedule_id: ObjectId, body: PatchScheduleRequest, principal: UserDep, state: StateDep
) -> ScheduleOut:
    row = await _own_schedule(state.database, principal, schedule_id)
    changes: dict[str, Any] = {}
    if body.input is not None:
        # A graph no longer published keeps its schedule editable; its runs end graph_not_found.
        async with state.database.transaction() as session:
            spec = (await published_graphs(session, [row.graph_id])).get(row.graph_id)
        if spec is not None:
            validate_input(spec, body.input)
        changes["input"] = body.input
    if body.cron is not None:
        changes["cron"] = validate_cron(body.cron)
    if body.timezone is not None:
        changes["timezone"] = validate_timezone(body.timezone)
    if body.enabled is not None:
        changes["enabled"] = body.enabled
    if body.overlap is not None:
        changes["overlap"] = body.overlap.value
    if body.catchup_window_seconds is not None:
        changes["catchup_window_seconds"] = body.catchup_window_seconds
    if "notify_url" in body.model_fields_set:  # an explicit null clears it
        if body.notify_url is not None:
            check_notify_url(state.settings, body.notify_url)
        changes["notify_url"] = body.notify_url
    if not changes:
        raise Unprocessable(
            "nothing to change: send at least one of input, cron, timezone, enabled, overlap, notify_url"
        )
    updated = await schedule_service.apply_changes(
        state.database,
        state.temporal,
        task_queue=state.settings.temporal_task_queue,
        row=row,
        changes=changes,
    )
    description = await temporal_schedules.describe(state.temporal, updated)
    upcoming = temporal_schedules.next_times(description, limit=1)
    return schedule_out(updated, upcoming[0] if upcoming else None)


@router.delete(
    "/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses=errors(503)
)
async def delete_schedule(schedule_id: ObjectId, principal: UserDep, state: StateDep) -> Response:
    row = await _own_schedule(state.database, principal, schedule_id)
    async with state.database.transaction() as session:
        await schedules.mark_deleted(session, schedule_id=row.id)
        if row.owns_grant:
            await grants.revoke_grant(session, grant_id=row.grant_id)
        await temporal_schedules.delete(state.temporal, row)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{schedule_id}/trigger",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TriggerResponse,
    responses=errors(503),
)
async def trigger_schedule(schedule_id: ObjectId, principal: UserDep, state: StateDep) -> TriggerResponse:
    row = await _own_schedule(state.database, principal, schedule_id)
    await temporal_schedules.trigger(state.temporal, row)
    return TriggerResponse(schedule_id=row.id, triggered=True)
