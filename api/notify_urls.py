"""Checking a ``notify_url`` when a run or trigger names one (``contracts.notify``): 422
``notify_url_not_allowed`` for a host off the allow-list, or when notifications are not configured."""

from __future__ import annotations

from api.errors import Unprocessable
from runledger.config import Settings
from runledger.contracts import notify as nt
from runledger.contracts.errors import ErrorCode


def check_notify_url(settings: Settings, url: str) -> None:
    if settings.notify_signing_key is None:
        raise Unprocessable(
            "run notifications are not configured (RUNLEDGER_NOTIFY_SIGNING_KEY)",
            code=ErrorCode.NOTIFY_URL_NOT_ALLOWED,
        )
    problem = nt.url_problem(url, nt.parse_allowed_hosts(settings.notify_allowed_hosts))
    if problem is not None:
        raise Unprocessable(problem, code=ErrorCode.NOTIFY_URL_NOT_ALLOWED)
