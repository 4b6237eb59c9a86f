"""Recording a schedule slot as a run: once per slot, billed to the grant's account, with the first
of the two grant checks (GRANT_VALIDATED_TWICE, BILLING_VIA_GRANT, ONE_RUN_PER_SLOT), priced like an
API start (``db.preflight``: LiteLLM prices; an account that cannot cover the estimate is refused
``insufficient_credits``). The run takes the schedule's ``notify_url``; a slot refused here ends
``skipped`` at once and is announced here."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.notify import start_notification
from db import catalog, events, grants, preflight, runs, schedules
from db.models import GraphRun
from db.session import Database
from runledger.config import Settings
from runledger.contracts import ids
from runledger.contracts.errors import ErrorCode
from runledger.contracts.events import opening_events
from runledger.contracts.runs import RunKind, RunStatus, TriggerSource
from runledger.contracts.schedules import RecordSlotInput, RecordSlotResult


class ScheduleActivities:
    def __init__(self, *, database: Database, settings: Settings) -> None:
        self._db = database
        self._settings = settings

    @activity.defn(name="record_schedule_slot")
    async def record_slot(self, inp: RecordSlotInput) -> RecordSlotResult:
        """Database or network trouble raises and Temporal retries: a transient failure is never
        recorded as a skipped slot. Only a grant's refusal is."""
        async with self._db.transaction() as session:
            schedule = await schedules.get_schedule(
                session, schedule_id=inp.schedule_id, include_deleted=True
            )
            if schedule is None:
                raise ApplicationError(
                    f"schedule {inp.schedule_id} does not exist",
                    type="schedule_not_found",
                    non_retryable=True,
                )
            grant = await grants.get_grant(session, grant_id=schedule.grant_id)
            try:
                # Priced like an API start (db.preflight): the grant's room for a call, the credits.
                denied = await preflight.trigger_refusal(
                    session,
                    grant=grant,
                    graph_id=inp.graph_id,
                    spec=await catalog.current_graph(session, inp.graph_id),
                    payload=inp.input,
                    markup=self._settings.markup,
                    now=await grants.database_now(session),
                )
            except preflight.ModelNotPriced as exc:
                # Retried by Temporal: a worker publishes its models' prices when it starts.
                raise ApplicationError(str(exc), type=ErrorCode.MODEL_NOT_PRICED) from None
            run_id = ids.scheduled_run_id(schedule_id=inp.schedule_id, scheduled_for=inp.scheduled_for)
            run = GraphRun(
                run_id=run_id,
                workflow_id=ids.graph_run_workflow_id(run_id),
                graph_id=inp.graph_id,
                # The grant's account pays, whoever owns the schedule.
                billing_account_id=grant.billing_account_id if grant else schedule.billing_account_id,
                run_kind=RunKind.SYSTEM_SCHEDULED,
                trigger_source=TriggerSource.TEMPORAL_SCHEDULE,
                trigger_ref=inp.schedule_id,
                requested_by=schedule.owner_user_id,
                schedule_id=inp.schedule_id,
                scheduled_for=inp.scheduled_for,
                grant_id=schedule.grant_id,
                notify_url=schedule.notify_url,
                input=inp.input,
                status=RunStatus.PENDING if denied is None else RunStatus.SKIPPED,
                error_code=None if denied is None else denied.code,
                error_message=None if denied is None else denied.message,
                trace_id=ids.langfuse_trace_id(run_id),
            )
            if denied is not None:
                run.completed_at = await grants.database_now(session)
            recorded, created = await runs.insert_slot_run(session, run=run)
            if created:
                initial = opening_events(
                    recorded.status, error_code=recorded.error_code, error_message=recorded.error_message
                )
                await events.append(session, run_id=recorded.run_id, events=initial)
        if recorded.status == RunStatus.SKIPPED and recorded.notify_url:
            # Ended here, at its slot: no workflow will finalize (and so announce) it. Idempotent, so a
            # retried record announces a slot whose first attempt committed but did not get this far.
            await start_notification(recorded.run_id)
        return RecordSlotResult(
            run_id=recorded.run_id,
            billing_account_id=recorded.billing_account_id,
            status=recorded.status,
            created=created,
            error_code=recorded.error_code,
            credit_wait_seconds=self._settings.credit_wait_seconds,
            input_wait_seconds=self._settings.input_wait_seconds,
        )
