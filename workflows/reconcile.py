"""``ReconcileBillingWorkflow``: one reconciliation pass, started by the stack's Temporal schedule:
the billing checks, then the run sweeper (runs that Postgres and Temporal disagree about)."""

from __future__ import annotations

from temporalio import workflow

from runledger.contracts.reconcile import RECONCILE_WORKFLOW, ReconcileInput, ReconcileResult, SweepInput
from workflows import policies

with workflow.unsafe.imports_passed_through():
    from activities.reconcile import ReconcileActivities
    from activities.sweep import SweepActivities


@workflow.defn(name=RECONCILE_WORKFLOW)
class ReconcileBillingWorkflow:
    @workflow.run
    async def run(self, inp: ReconcileInput) -> ReconcileResult:
        result = await workflow.execute_activity_method(
            ReconcileActivities.reconcile, inp, **policies.DB_STEP
        )
        result.swept = await workflow.execute_activity_method(
            SweepActivities.sweep, SweepInput(older_than_seconds=inp.sweep_after_seconds), **policies.DB_STEP
        )
        return result
