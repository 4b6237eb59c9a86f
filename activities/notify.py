"""Sending a run's signed completion notification (``contracts.notify``), and starting its workflow.

``start_notification`` is called by ``finalize_run`` after the commit that ended a run (from the
workflow's finalize step or the run sweeper), and by ``record_schedule_slot`` for a slot recorded
``skipped`` (its grant refused it, so no workflow ever finalizes it): it starts ``RunNotifyWorkflow`` (id ``notify:{run_id}``,
so at most one per run) and never fails the finalize — a notification that cannot even be started
is logged. ``notify_run`` is one attempt: it re-checks the allow-list, POSTs the summary signed with
Standard Webhooks under the account's secret, records the attempt, and raises on anything but a 2xx so
that Temporal retries it with backoff.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import structlog
from standardwebhooks.webhooks import Webhook
from temporalio import activity
from temporalio.exceptions import ApplicationError

from db import notifications, runs
from db.models import GraphRun
from db.session import Database
from runledger import launch
from runledger.config import Settings
from runledger.contracts import notify as nt

log = structlog.get_logger(__name__)

SEND_TIMEOUT_SECONDS = 10.0


async def start_notification(run_id: str) -> None:
    """Start the run's notification workflow from inside an activity (best effort, see above)."""
    try:
        await launch.start_notify_workflow(
            activity.client(), task_queue=activity.info().task_queue, run_id=run_id
        )
    except Exception as exc:
        # Already notified (a finished notify workflow's id is not reused), or Temporal refused:
        # the run is final either way, and must not fail on its notification.
        log.warning("run_notification_not_started", run_id=run_id, error=f"{type(exc).__name__}: {exc}")


def run_summary(run: GraphRun) -> dict[str, object]:
    return {
        "run_id": run.run_id,
        "graph_id": run.graph_id,
        "run_kind": run.run_kind,
        "status": run.status,
        "error_code": run.error_code,
        "error_message": run.error_message,
        "model_calls": run.model_calls,
        "cost_credits": run.cost_credits,
        "output": run.output,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "completed_at": run.completed_at.isoformat() if run.completed_at else None,
    }


class NotifyActivities:
    def __init__(self, *, database: Database, settings: Settings) -> None:
        self._db = database
        self._settings = settings

    @activity.defn(name="notify_run")
    async def notify(self, inp: nt.NotifyInput) -> nt.NotifyResult:
        attempt = activity.info().attempt
        async with self._db.transaction() as session:
            run = await runs.get_run(session, run_id=inp.run_id)
        if run is None or not run.notify_url:
            return nt.NotifyResult(delivered=False, attempts=attempt)
        url = run.notify_url
        key = self._settings.notify_signing_key
        problem = nt.url_problem(url, nt.parse_allowed_hosts(self._settings.notify_allowed_hosts))
        if key is None:
            problem = "RUNLEDGER_NOTIFY_SIGNING_KEY is not set"
        if problem is not None:
            await self._record(run.run_id, attempt, url, None, problem, delivered=False)
            raise ApplicationError(problem, type="notify_url_not_allowed", non_retryable=True)
        assert key is not None
        now = datetime.now(UTC)
        body = json.dumps(nt.summary(run_summary(run), timestamp=now.isoformat()), default=str)
        msg_id = nt.message_id(run.run_id)
        secret = nt.account_secret(key.get_secret_value(), run.billing_account_id)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "runledger-notify",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        }
        status: int | None = None
        error: str | None = None
        try:
            async with httpx.AsyncClient(timeout=SEND_TIMEOUT_SECONDS, follow_redirects=False) as client:
                resp = await client.post(url, content=body.encode(), headers=headers)
            status = resp.status_code
            if not 200 <= status < 300:
                error = f"the receiver answered {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        await self._record(run.run_id, attempt, url, status, error, delivered=error is None)
        if error is not None:
            raise ApplicationError(error, type="notify_failed")  # retried with backoff
        return nt.NotifyResult(delivered=True, attempts=attempt)

    async def _record(
        self, run_id: str, attempt: int, url: str, status: int | None, error: str | None, *, delivered: bool
    ) -> None:
        async with self._db.transaction() as session:
            await notifications.record_attempt(
                session,
                run_id=run_id,
                attempt=attempt,
                url=url,
                http_status=status,
                error=error,
                delivered=delivered,
            )
