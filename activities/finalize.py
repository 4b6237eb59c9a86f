"""Finalizing a run: its terminal status, what it cost, its hold released, its terminal event and
trace outcome — exactly once. Used by the run's own ``finalize_run`` step and by the run sweeper for
a run whose workflow ended without finalizing it (HOLDS_ALWAYS_RELEASED)."""

from __future__ import annotations

from typing import Any

from activities.notify import start_notification
from db import events, ledger, reservations, runs
from db.session import Database
from runledger.contracts.events import terminal_events
from runledger.contracts.runs import FinalizeInput, FinalizeResult, RunStatus
from runledger.telemetry import RunRef, RunTracer


async def finalize_run(database: Database, tracer: RunTracer, inp: FinalizeInput) -> FinalizeResult:
    """Record the run's terminal status. Idempotent: a finished run is never moved again (its hold is
    released all the same)."""
    async with database.transaction() as session:
        values: dict[str, Any] = {"error_code": inp.error_code, "error_message": inp.error_message}
        if inp.status != RunStatus.SUCCESS:
            # Failed runs still show what they cost.
            calls, credits = await ledger.run_charge_totals(session, run_id=inp.run_id)
            values.update(model_calls=calls, cost_credits=credits)
        changed = await runs.transition(session, run_id=inp.run_id, to=inp.status, values=values)
        await reservations.release(session, run_id=inp.run_id)
        run = await runs.get_run(session, run_id=inp.run_id)
        if changed and run is not None:
            # Exactly once: only the call that moved the run to its terminal status emits.
            await events.append(
                session,
                run_id=inp.run_id,
                events=terminal_events(
                    run.status,
                    error_code=run.error_code,
                    error_message=run.error_message,
                    output=run.output,
                    cost_credits=run.cost_credits,
                ),
            )
    if changed and run is not None:
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
            await start_notification(run)
    return FinalizeResult(status=run.status if run else inp.status, changed=changed)
