"""``ReconcileBillingWorkflow``: one reconciliation pass, started by the stack's Temporal schedule."""

from __future__ import annotations

from temporalio import workflow

from runledger.contracts.reconcile import RECONCILE_WORKFLOW, ReconcileInput, ReconcileResult
from workflows import policies

with workflow.unsafe.imports_passed_through():
    from activities.reconcile import ReconcileActivities


@workflow.defn(name=RECONCILE_WORKFLOW)
class ReconcileBillingWorkflow:
    @workflow.run
    async def run(self, inp: ReconcileInput) -> ReconcileResult:
        return await workflow.execute_activity_method(ReconcileActivities.reconcile, inp, **policies.DB_STEP)
