"""Checking a ``notify_url`` when a run, schedule or trigger names one (``contracts.notify``): 422
``notify_url_not_allowed`` for a host off the allow-list, or when notifications are not configured.
And announcing a run the API itself ended (a webhook run its grant refused at delivery, recorded
``skipped``: no workflow finalizes it), best effort like the worker's ``finalize_run``."""

from __future__ import annotations

import structlog
from temporalio.client import Client

from api.errors import Unprocessable
from db.models import GraphRun
from runledger import launch
from runledger.config import Settings
from runledger.contracts import notify as nt
from runledger.contracts.errors import ErrorCode

log = structlog.get_logger(__name__)


def check_notify_url(settings: Settings, url: str) -> None:
    if settings.notify_signing_key is None:
        raise Unprocessable(
            "run notifications are not configured (RUNLEDGER_NOTIFY_SIGNING_KEY)",
            code=ErrorCode.NOTIFY_URL_NOT_ALLOWED,
        )
    problem = nt.url_problem(url, nt.parse_allowed_hosts(settings.notify_allowed_hosts))
    if problem is not None:
        raise Unprocessable(problem, code=ErrorCode.NOTIFY_URL_NOT_ALLOWED)


async def announce_ended(temporal: Client, settings: Settings, ended: list[GraphRun]) -> None:
    """Start the notification of each ended run that names a ``notify_url``. Never raises: the run
    is final either way, and the delivery it came from must not fail on its notification."""
    for run in ended:
        if not run.notify_url:
            continue
        try:
            await launch.start_notify_workflow(
                temporal, task_queue=settings.temporal_task_queue, run_id=run.run_id
            )
        except Exception as exc:
            log.warning(
                "run_notification_not_started", run_id=run.run_id, error=f"{type(exc).__name__}: {exc}"
            )
