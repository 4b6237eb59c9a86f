"""Finalizing a run: its terminal status, what it cost, its hold released, its terminal event and
trace outcome — exactly once. Used by the execution that finished its graph (the run's last step),
by the run's ``finalize_run`` step for every other end, and by the run sweeper for a run whose
workflow ended without finalizing it (HOLDS_ALWAYS_RELEASED)."""

from __future__ import annotations

from typing import Any

from activities.notify import start_notification
from db import lifecycle, runs
from db.session import Database
from runledger.contracts.events import terminal_events
from runledger.contracts.runs import FinalizeInput, FinalizeResult, RunStatus
from runledger.telemetry import RunRef, RunTracer


async def finalize_run(
    database: Database,
    tracer: RunTracer,
    inp: FinalizeInput,
    *,
    output: dict[str, Any] | None = None,
    unless_cancel_requested: bool = False,
) -> FinalizeResult:
    """Record the run's terminal status (and ``output``, a finished execution's result, when given).
    Idempotent: a finished run is never moved again (its hold is released all the same). With
    ``unless_cancel_requested`` a run asked to cancel is not moved either (``changed`` False, its
    status still open). One statement (``db.lifecycle.finish``) on the statement pool."""
    run = await database.single_statement(
        lambda conn: lifecycle.finish(
            conn,
            run_id=inp.run_id,
            status=inp.status,
            error_code=inp.error_code,
            error_message=inp.error_message,
            # Every end counts the run's receipts, but a ``success`` without an output: that is the
            # finalize step of an execution (of an earlier release) that recorded both already.
            count_charges=inp.status != RunStatus.SUCCESS or output is not None,
            output=output,
            unless_cancel_requested=unless_cancel_requested,
            # Their output and cost fields are filled in from the row by the statement.
            events=terminal_events(
                inp.status,
                error_code=inp.error_code,
                error_message=inp.error_message,
                output=None,
                cost_credits=0,
            ),
        )
    )
    if run is None:
        async with database.autocommit() as session:
            status = await runs.status_of(session, run_id=inp.run_id)
        return FinalizeResult(status=status or inp.status, changed=False)
    # After the commit, and only from the call that moved the run: one outcome per trace.
    tracer.outcome(
        RunRef(run_id=run.run_id, graph_id=run.graph_id, billing_account_id=run.billing_account_id),
        status=run.status,
        error_code=run.error_code,
        error_message=run.error_message,
        model_calls=run.model_calls,
        cost_credits=run.cost_credits,
    )
    if run.notify_url:
        # Its own workflow, after the run ended: a receiver that is down never delays the run.
        await start_notification(run.run_id)
    return FinalizeResult(
        status=run.status, changed=True, model_calls=run.model_calls, cost_credits=run.cost_credits
    )
