"""Signed run-completion notifications (outbound webhooks): what is sent, where it may go, and how
it is signed.

A run started with a ``notify_url`` (an API run, a webhook trigger's or a schedule's runs) is
announced when it ends, however it ends (``skipped`` at its trigger included):
``RunNotifyWorkflow`` (``notify:{run_id}``, one per run) POSTs ``summary()`` signed with Standard
Webhooks (``webhook-id: run:{run_id}``, the same on every attempt so a receiver dedupes),
retried by Temporal with backoff; each attempt is a ``run_notifications`` row. The run has already
ended when it starts: a receiver that is down never delays or fails it.

The signing secret is the billing account's own, derived (HMAC-SHA256 of the account id under
``RUNLEDGER_NOTIFY_SIGNING_KEY``), shown by ``GET /api/v1/me/notify-secret``: one tenant's secret
cannot sign another's notifications. A URL's host must be on ``RUNLEDGER_NOTIFY_ALLOWED_HOSTS``
(exact names, or ``*.example.com`` for subdomains), checked when the URL is given and again before
every send.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

NOTIFY_WORKFLOW = "RunNotifyWorkflow"
EVENT_TYPE = "run.completed"
MAX_URL_CHARS = 2_000


@dataclass
class NotifyInput:
    run_id: str


@dataclass
class NotifyResult:
    delivered: bool
    attempts: int


def notify_workflow_id(run_id: str) -> str:
    return f"notify:{run_id}"


def message_id(run_id: str) -> str:
    return f"run:{run_id}"


def account_secret(signing_key: str, billing_account_id: str) -> str:
    """The account's Standard Webhooks secret (``whsec_`` + base64 of 32 bytes)."""
    digest = hmac.new(signing_key.encode(), f"notify:{billing_account_id}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(digest).decode()


def parse_allowed_hosts(value: str) -> tuple[str, ...]:
    return tuple(h.strip().lower() for h in value.split(",") if h.strip())


def url_problem(url: str, allowed: tuple[str, ...]) -> str | None:
    """Why ``url`` may not receive notifications (None: it may)."""
    if len(url) > MAX_URL_CHARS:
        return f"notify_url is longer than {MAX_URL_CHARS} characters"
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "notify_url must be an http(s) URL with a host"
    if parts.username or parts.password:
        return "notify_url must not carry credentials"
    host = parts.hostname.lower()
    for rule in allowed:
        if host == rule or (rule.startswith("*.") and host.endswith(rule[1:])):
            return None
    return f"notify_url host {host!r} is not in RUNLEDGER_NOTIFY_ALLOWED_HOSTS"


def summary(run: dict[str, Any], *, timestamp: str) -> dict[str, Any]:
    """The notification body (the Standard Webhooks payload convention: type, timestamp, data)."""
    return {"type": EVENT_TYPE, "timestamp": timestamp, "data": run}
