"""The Temporal side of a schedule: built from the row, so the row and Temporal never disagree.

Every call has an RPC timeout; an unreachable Temporal is a 503 with the error envelope, and the
caller's transaction rolls back, so a schedule exists in both places or in neither.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from api.errors import AppError, Conflict, ServiceUnavailable, Unprocessable
from db.trigger_models import Schedule as ScheduleRow
from runledger.contracts import temporal as sa
from runledger.contracts.runs import RunKind
from runledger.contracts.schedules import (
    SCHEDULED_RUN_WORKFLOW,
    Overlap,
    ScheduledRunInput,
    scheduled_action_workflow_id,
)

RPC_TIMEOUT = timedelta(seconds=5)
T = TypeVar("T")

_OVERLAP = {
    Overlap.SKIP: ScheduleOverlapPolicy.SKIP,
    Overlap.BUFFER_ONE: ScheduleOverlapPolicy.BUFFER_ONE,
    Overlap.BUFFER_ALL: ScheduleOverlapPolicy.BUFFER_ALL,
    Overlap.CANCEL_OTHER: ScheduleOverlapPolicy.CANCEL_OTHER,
    Overlap.TERMINATE_OTHER: ScheduleOverlapPolicy.TERMINATE_OTHER,
    Overlap.ALLOW_ALL: ScheduleOverlapPolicy.ALLOW_ALL,
}


def _action(row: ScheduleRow, task_queue: str) -> ScheduleActionStartWorkflow:
    return ScheduleActionStartWorkflow(
        SCHEDULED_RUN_WORKFLOW,
        ScheduledRunInput(schedule_id=row.id, graph_id=row.graph_id, input=row.input),
        id=scheduled_action_workflow_id(row.id),
        task_queue=task_queue,
        typed_search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.SCHEDULE_ID, row.id),
                SearchAttributePair(sa.GRAPH_ID, row.graph_id),
                SearchAttributePair(sa.BILLING_ACCOUNT_ID, row.billing_account_id),
                SearchAttributePair(sa.RUN_KIND, RunKind.SYSTEM_SCHEDULED.value),
            ]
        ),
    )


def _spec(row: ScheduleRow) -> ScheduleSpec:
    return ScheduleSpec(cron_expressions=[row.cron], time_zone_name=row.timezone)


def _policy(row: ScheduleRow) -> SchedulePolicy:
    return SchedulePolicy(
        overlap=_OVERLAP[Overlap(row.overlap)], catchup_window=timedelta(seconds=row.catchup_window_seconds)
    )


async def _call(operation: Callable[[], Awaitable[T]]) -> T:
    try:
        return await operation()
    except RPCError as exc:
        raise _map_rpc_error(exc) from exc


def _map_rpc_error(exc: RPCError) -> AppError:
    if exc.status == RPCStatusCode.INVALID_ARGUMENT:
        return Unprocessable(f"Temporal refused the schedule: {exc.message}")
    if exc.status == RPCStatusCode.ALREADY_EXISTS:
        return Conflict(f"Temporal schedule already exists: {exc.message}", code="schedule_exists")
    return ServiceUnavailable(f"Temporal is unavailable: {exc.message}")


async def create(client: Client, row: ScheduleRow, *, task_queue: str) -> None:
    schedule = Schedule(
        action=_action(row, task_queue),
        spec=_spec(row),
        policy=_policy(row),
        state=ScheduleState(paused=not row.enabled, note="created paused" if not row.enabled else None),
    )
    await _call(
        lambda: client.create_schedule(
            row.temporal_schedule_id,
            schedule,
            # The schedule itself is findable by its id too (Schedules page of the web UI).
            search_attributes=TypedSearchAttributes([SearchAttributePair(sa.SCHEDULE_ID, row.id)]),
            rpc_timeout=RPC_TIMEOUT,
        )
    )


async def update(client: Client, row: ScheduleRow, *, task_queue: str, enabled_changed: bool) -> None:
    """Push the row's action, spec and policy; keep Temporal's paused state and notes unless the
    enabled flag itself changed."""

    def updater(current: ScheduleUpdateInput) -> ScheduleUpdate:
        schedule = current.description.schedule
        schedule.action = _action(row, task_queue)
        schedule.spec = _spec(row)
        schedule.policy = _policy(row)
        if enabled_changed:
            schedule.state.paused = not row.enabled
            schedule.state.note = "resumed via API" if row.enabled else "paused via API"
        return ScheduleUpdate(schedule=schedule)

    handle = client.get_schedule_handle(row.temporal_schedule_id)
    await _call(lambda: handle.update(updater, rpc_timeout=RPC_TIMEOUT))


async def describe(client: Client, row: ScheduleRow) -> ScheduleDescription:
    handle = client.get_schedule_handle(row.temporal_schedule_id)
    return await _call(lambda: handle.describe(rpc_timeout=RPC_TIMEOUT))


def next_times(description: ScheduleDescription, limit: int = 5) -> list[datetime]:
    return list(description.info.next_action_times[:limit])


async def trigger(client: Client, row: ScheduleRow) -> None:
    handle = client.get_schedule_handle(row.temporal_schedule_id)
    await _call(lambda: handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL, rpc_timeout=RPC_TIMEOUT))


async def delete(client: Client, row: ScheduleRow) -> None:
    """Idempotent: a schedule Temporal no longer has counts as deleted."""
    handle = client.get_schedule_handle(row.temporal_schedule_id)
    try:
        await handle.delete(rpc_timeout=RPC_TIMEOUT)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise _map_rpc_error(exc) from exc
