"""Payloads of the billing reconciliation workflow and its schedule."""

from __future__ import annotations

from dataclasses import dataclass

RECONCILE_WORKFLOW = "ReconcileBillingWorkflow"
RECONCILE_SCHEDULE_ID = "runledger:reconcile"


@dataclass
class ReconcileInput:
    threshold_seconds: int = 3600
    event_retention_days: int = 30


@dataclass
class ReconcileResult:
    report_id: int
    flagged_calls: int
    accounts_checked: int
    accounts_with_drift: int
    pruned_events: int = 0
