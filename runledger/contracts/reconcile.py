"""Payloads of the billing reconciliation workflow and its schedule."""

from __future__ import annotations

from dataclasses import dataclass

RECONCILE_WORKFLOW = "ReconcileBillingWorkflow"
RECONCILE_SCHEDULE_ID = "runledger:reconcile"


@dataclass
class ReconcileInput:
    threshold_seconds: int = 3600
    event_retention_days: int = 30
    #: Unfinished runs older than this are checked against Temporal by the run sweeper.
    sweep_after_seconds: int = 120


@dataclass
class SweepInput:
    older_than_seconds: int = 120
    #: Runs checked per pass (each costs one DescribeWorkflowExecution).
    limit: int = 500


@dataclass
class SweepResult:
    checked: int = 0
    #: API runs left ``pending`` without a workflow (a lost start) whose workflow was started.
    started: int = 0
    #: Runs whose workflow had ended (terminated, timed out, failed) or vanished: finalized, hold released.
    finalized: int = 0


@dataclass
class ReconcileResult:
    report_id: int
    flagged_calls: int
    accounts_checked: int
    accounts_with_drift: int
    pruned_events: int = 0
    swept: SweepResult | None = None
    #: Unsettled calls whose owed charge this pass wrote.
    settled_calls: int = 0
    #: Calls that bypassed the meter since the last report (NO_UNMETERED_MODEL_CALLS).
    unmetered_calls: int = 0
