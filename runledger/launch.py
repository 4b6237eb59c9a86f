"""Starting a run's ``GraphRunWorkflow``: the one place that knows how (id, id policies, search
attributes, trace context). Used by the API after it has committed a run, and by the run sweeper of
the reconciliation pass for a run whose start was lost. Also the start of a run's
``RunNotifyWorkflow`` (``contracts.notify``), by whichever process ended the run.

Starting is idempotent: the workflow id is derived from the run id, and a start of a workflow that
already runs attaches to it (``USE_EXISTING``); a workflow that failed (a start that gave up waiting
for its row) may be started again; a completed run's id is never reused.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from runledger.config import Settings
from runledger.contracts import notify as nt
from runledger.contracts import temporal as sa
from runledger.contracts.runs import GRAPH_RUN_WORKFLOW, GraphRunInput
from runledger.telemetry import run_trace_context

#: A start that Temporal cannot take within this time fails (the caller decides what that means).
START_RPC_TIMEOUT = timedelta(seconds=10)


class RecordedRun(Protocol):
    """What starting needs of a recorded run (``db.models.GraphRun`` has it)."""

    @property
    def run_id(self) -> str: ...
    @property
    def workflow_id(self) -> str: ...
    @property
    def graph_id(self) -> str: ...
    @property
    def billing_account_id(self) -> str: ...
    @property
    def run_kind(self) -> str: ...


async def start_graph_workflow(temporal: Client, settings: Settings, run: RecordedRun) -> None:
    """Start (or attach to) the run's workflow. Raises ``temporalio.service.RPCError`` when Temporal
    cannot take it."""
    # The StartWorkflow span opens the run's trace (id derived from run_id), which the workflow, its
    # activities and every model call continue.
    with run_trace_context(run.run_id):
        await temporal.start_workflow(
            GRAPH_RUN_WORKFLOW,
            GraphRunInput(
                run_id=run.run_id,
                graph_id=run.graph_id,
                billing_account_id=run.billing_account_id,
                run_kind=run.run_kind,
                credit_wait_seconds=settings.credit_wait_seconds,
                input_wait_seconds=settings.input_wait_seconds,
                authorize_in_execute=True,
            ),
            id=run.workflow_id,
            task_queue=settings.temporal_task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            rpc_timeout=START_RPC_TIMEOUT,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.RUN_ID, run.run_id),
                    SearchAttributePair(sa.GRAPH_ID, run.graph_id),
                    SearchAttributePair(sa.BILLING_ACCOUNT_ID, run.billing_account_id),
                    SearchAttributePair(sa.RUN_KIND, run.run_kind),
                ]
            ),
        )


async def start_notify_workflow(temporal: Client, *, task_queue: str, run_id: str) -> None:
    """Start the ended run's notification workflow ``notify:{run_id}``: at most one per run, ever (a
    second start attaches to a running one, and a finished one's id is never reused). Raises
    ``temporalio.exceptions.WorkflowAlreadyStartedError`` for an already-notified run, and
    ``temporalio.service.RPCError`` when Temporal cannot take it."""
    await temporal.start_workflow(
        nt.NOTIFY_WORKFLOW,
        nt.NotifyInput(run_id=run_id),
        id=nt.notify_workflow_id(run_id),
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        rpc_timeout=START_RPC_TIMEOUT,
    )
