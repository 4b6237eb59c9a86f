"""The reconciliation pass: write the charges unsettled model calls owe, flag what cannot be settled
(with its reason), list the calls that bypassed the meter (NO_UNMETERED_MODEL_CALLS), measure
balance drift, store a report. Run by the ``runledger:reconcile``
Temporal schedule and by ``runledger reconcile``."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities.metering import write_owed_charge
from db import events, model_calls, reconciliation
from db.grants import database_now
from db.session import Database
from runledger.contracts.reconcile import ReconcileInput, ReconcileResult


async def reconcile_once(
    database: Database, threshold_seconds: int, event_retention_days: int = 30
) -> ReconcileResult:
    async with database.transaction() as session:
        started_at = await database_now(session)
        previous = await reconciliation.last_report(session)
        owed = await model_calls.owed_charges(session)
    settled: list[dict[str, Any]] = []
    for call in owed:
        if call.charge is None:
            continue
        # Under the call's own key: if its charge did commit after all, this is a no-op.
        outcome = await write_owed_charge(database, call.charge)
        settled.append(
            {
                "id": call.id,
                "run_id": call.run_id,
                "call_key": call.call_key,
                "attempt": call.attempt,
                "receipt_id": outcome.receipt_id,
                "created": outcome.created,
            }
        )
    async with database.transaction() as session:
        flagged = await reconciliation.flag_unsettleable(session, older_than_seconds=threshold_seconds)
        # Run events are a view of a run, not its record: bound their growth.
        pruned = await events.prune(session, older_than_days=event_retention_days)
        drift = await reconciliation.balance_drift(session)
        report = await reconciliation.save_report(
            session,
            started_at=started_at,
            threshold_seconds=threshold_seconds,
            flagged=flagged,
            settled=settled,
            drift=drift,
            accounts_checked=await reconciliation.count_accounts(session),
            unmetered=await reconciliation.unmetered_calls(
                session, since=None if previous is None else previous.started_at
            ),
        )
    return ReconcileResult(
        report_id=report.id,
        flagged_calls=report.flagged_calls,
        settled_calls=len(settled),
        accounts_checked=report.accounts_checked,
        accounts_with_drift=report.accounts_with_drift,
        pruned_events=pruned,
        unmetered_calls=len(report.details["unmetered_calls"]),
    )


class ReconcileActivities:
    def __init__(self, *, database: Database) -> None:
        self._db = database

    @activity.defn(name="reconcile_billing")
    async def reconcile(self, inp: ReconcileInput) -> ReconcileResult:
        return await reconcile_once(self._db, inp.threshold_seconds, inp.event_retention_days)
