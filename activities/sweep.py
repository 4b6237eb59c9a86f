"""The run sweeper: makes Postgres agree with Temporal about runs that should have moved on
(HOLDS_ALWAYS_RELEASED, and the lost-start half of the API's start protocol).

For every run still ``pending``/``running``/``paused`` past a threshold it describes the run's
workflow:

- workflow still open → nothing to do (a long run, or a run paused for credits or input);
- workflow closed (terminated — ``temporal workflow terminate``, a schedule's ``terminate_other``
  overlap —, timed out, failed, cancelled or even completed) but the row is not terminal: the run is
  finalized with the matching code and its hold released, so a dead workflow never shrinks its
  account's available credits;
- no workflow at all: an API, replay or webhook run still ``pending`` is a start Temporal never took
  (the API commits the run before it starts the workflow): the workflow is started now. Any other run
  is finalized ``workflow_missing``.

It runs as an activity of the reconciliation workflow (every 10 minutes on the worker's schedule,
or ``runledger reconcile``).
"""

from __future__ import annotations

import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.finalize import finalize_run
from db import runs
from db.session import Database
from runledger import launch
from runledger.config import Settings
from runledger.contracts.errors import ErrorCode
from runledger.contracts.reconcile import SweepInput, SweepResult
from runledger.contracts.runs import FinalizeInput, RunKind, RunStatus
from runledger.telemetry import RunTracer

log = structlog.get_logger(__name__)

#: Run kinds whose workflow the API starts after committing the run: a lost start is retried.
API_STARTED = frozenset({RunKind.USER_IMMEDIATE, RunKind.REPLAY, RunKind.SYSTEM_WEBHOOK})

_CLOSED: dict[WorkflowExecutionStatus, tuple[RunStatus, ErrorCode]] = {
    WorkflowExecutionStatus.TERMINATED: (RunStatus.ERROR, ErrorCode.WORKFLOW_TERMINATED),
    WorkflowExecutionStatus.TIMED_OUT: (RunStatus.ERROR, ErrorCode.WORKFLOW_TIMED_OUT),
    WorkflowExecutionStatus.FAILED: (RunStatus.ERROR, ErrorCode.WORKFLOW_FAILED),
    WorkflowExecutionStatus.CANCELED: (RunStatus.CANCELLED, ErrorCode.RUN_CANCELLED),
    WorkflowExecutionStatus.COMPLETED: (RunStatus.ERROR, ErrorCode.WORKFLOW_FAILED),
    WorkflowExecutionStatus.CONTINUED_AS_NEW: (RunStatus.ERROR, ErrorCode.WORKFLOW_FAILED),
}


async def sweep_runs(
    database: Database, temporal: Client, settings: Settings, tracer: RunTracer, inp: SweepInput
) -> SweepResult:
    async with database.transaction() as session:
        candidates = await runs.unfinished_older_than(
            session, older_than_seconds=inp.older_than_seconds, limit=inp.limit
        )
    result = SweepResult(checked=len(candidates))
    for run in candidates:
        try:
            status = (await temporal.get_workflow_handle(run.workflow_id).describe()).status
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            status = None
        if status == WorkflowExecutionStatus.RUNNING:
            continue
        if status is None and run.status == RunStatus.PENDING and run.run_kind in API_STARTED:
            await launch.start_graph_workflow(temporal, settings, run)
            log.warning("run_sweeper_started_lost_start", run_id=run.run_id)
            result.started += 1
            continue
        to, code = _CLOSED[status] if status is not None else (RunStatus.ERROR, ErrorCode.WORKFLOW_MISSING)
        message = (
            f"the run's workflow ended {status.name.lower()} without finalizing the run"
            if status is not None
            else "the run's workflow does not exist"
        )
        final = await finalize_run(
            database,
            tracer,
            FinalizeInput(run_id=run.run_id, status=to, error_code=code, error_message=message),
        )
        if final.changed:
            log.warning("run_sweeper_finalized", run_id=run.run_id, status=to, error_code=code)
            result.finalized += 1
    return result


class SweepActivities:
    def __init__(self, *, database: Database, settings: Settings, tracer: RunTracer) -> None:
        self._db = database
        self._settings = settings
        self._tracer = tracer

    @activity.defn(name="sweep_runs")
    async def sweep(self, inp: SweepInput) -> SweepResult:
        return await sweep_runs(self._db, activity.client(), self._settings, self._tracer, inp)
