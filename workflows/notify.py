"""``RunNotifyWorkflow``: a run's signed completion notification (``contracts.notify``), one
``notify_run`` activity retried by Temporal with backoff. Started after the run ended, apart from its
``GraphRunWorkflow``: however long the receiver is down, the run is not delayed or failed."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

from runledger.contracts.notify import NOTIFY_WORKFLOW, NotifyInput, NotifyResult
from workflows import policies

with workflow.unsafe.imports_passed_through():
    from activities.notify import NotifyActivities


@workflow.defn(name=NOTIFY_WORKFLOW)
class RunNotifyWorkflow:
    @workflow.run
    async def run(self, inp: NotifyInput) -> NotifyResult:
        try:
            return await workflow.execute_activity_method(
                NotifyActivities.notify, inp, **policies.NOTIFY_STEP
            )
        except ActivityError:
            # Every attempt is recorded in run_notifications; giving up is not a failure of anything.
            return NotifyResult(delivered=False, attempts=policies.NOTIFY_RETRY.maximum_attempts)
