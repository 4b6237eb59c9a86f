"""Workflows: deterministic orchestration only (TEMPORAL_DETERMINISM).

Contract: no I/O, clocks or randomness; workflow files import contracts and temporalio, and import
activity classes only inside ``workflow.unsafe.imports_passed_through()`` for method references.
"""

from workflows.graph_run import GraphRunWorkflow
from workflows.reconcile import ReconcileBillingWorkflow
from workflows.scheduled_run import ScheduledRunWorkflow

WORKFLOWS = [GraphRunWorkflow, ScheduledRunWorkflow, ReconcileBillingWorkflow]

__all__ = ["WORKFLOWS", "GraphRunWorkflow", "ReconcileBillingWorkflow", "ScheduledRunWorkflow"]
