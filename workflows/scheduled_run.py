"""``ScheduledRunWorkflow``: the thin action of a Temporal schedule.

It reads the slot time from ``TemporalScheduledStartTime`` (never the clock or its input), records
the slot's run once, and runs ``GraphRunWorkflow`` as the child ``graph-run:{run_id}``. A slot
delivered twice finds the run already recorded and the child already started: one run, no orphan id.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from runledger.contracts import ids
from runledger.contracts import temporal as sa
from runledger.contracts.runs import (
    GRAPH_RUN_WORKFLOW,
    TERMINAL_STATUSES,
    GraphRunInput,
    GraphRunResult,
    RunKind,
)
from runledger.contracts.schedules import (
    SCHEDULED_RUN_WORKFLOW,
    SCHEDULED_START_TIME,
    RecordSlotInput,
    ScheduledRunInput,
)
from workflows import policies

with workflow.unsafe.imports_passed_through():
    from activities.schedules import ScheduleActivities

DUPLICATE_SLOT = "duplicate_slot"


@workflow.defn(name=SCHEDULED_RUN_WORKFLOW)
class ScheduledRunWorkflow:
    @workflow.run
    async def run(self, inp: ScheduledRunInput) -> GraphRunResult:
        scheduled_for = workflow.info().typed_search_attributes.get(SCHEDULED_START_TIME)
        if scheduled_for is None:
            raise ApplicationError(
                "ScheduledRunWorkflow runs only as a Temporal schedule's action",
                type="not_scheduled",
                non_retryable=True,
            )
        slot = await workflow.execute_local_activity_method(
            ScheduleActivities.record_slot,
            RecordSlotInput(
                schedule_id=inp.schedule_id,
                graph_id=inp.graph_id,
                scheduled_for=scheduled_for,
                input=inp.input,
            ),
            **policies.DB_STEP,
        )
        if slot.status in TERMINAL_STATUSES:
            return GraphRunResult(run_id=slot.run_id, status=slot.status, error_code=slot.error_code)
        try:
            result: GraphRunResult = await workflow.execute_child_workflow(
                GRAPH_RUN_WORKFLOW,
                GraphRunInput(
                    run_id=slot.run_id,
                    graph_id=inp.graph_id,
                    billing_account_id=slot.billing_account_id,
                    run_kind=RunKind.SYSTEM_SCHEDULED,
                    credit_wait_seconds=slot.credit_wait_seconds,
                    input_wait_seconds=slot.input_wait_seconds,
                    authorize_in_execute=True,
                ),
                id=ids.graph_run_workflow_id(slot.run_id),
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                # Chosen on purpose (HOLDS_ALWAYS_RELEASED): when this parent is terminated (a
                # schedule's terminate_other overlap, an operator) the run is asked to cancel, so it
                # finalizes itself ``cancelled`` and releases its hold at once. Temporal's default,
                # TERMINATE, would kill it without finalizing; the run sweeper would only clean up later.
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                result_type=GraphRunResult,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(sa.RUN_ID, slot.run_id),
                        SearchAttributePair(sa.GRAPH_ID, inp.graph_id),
                        SearchAttributePair(sa.BILLING_ACCOUNT_ID, slot.billing_account_id),
                        SearchAttributePair(sa.RUN_KIND, RunKind.SYSTEM_SCHEDULED.value),
                        SearchAttributePair(sa.SCHEDULE_ID, inp.schedule_id),
                    ]
                ),
            )
        except WorkflowAlreadyStartedError:
            # Another delivery of this slot already runs (or ran) it.
            return GraphRunResult(run_id=slot.run_id, status=DUPLICATE_SLOT)
        return result
