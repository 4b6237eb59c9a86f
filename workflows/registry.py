"""The workflows a runledger worker registers (and a replayer replays)."""

from workflows.graph_run import GraphRunWorkflow
from workflows.notify import RunNotifyWorkflow
from workflows.reconcile import ReconcileBillingWorkflow
from workflows.scheduled_run import ScheduledRunWorkflow

WORKFLOWS = [GraphRunWorkflow, ScheduledRunWorkflow, ReconcileBillingWorkflow, RunNotifyWorkflow]

__all__ = [
    "WORKFLOWS",
    "GraphRunWorkflow",
    "ReconcileBillingWorkflow",
    "RunNotifyWorkflow",
    "ScheduledRunWorkflow",
]
