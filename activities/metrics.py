"""The worker's process-local Prometheus counters: what Postgres cannot show, because the write that
would have recorded it is the thing that failed.

They live in prometheus-client's default registry; ``runledger worker`` serves it on
``RUNLEDGER_WORKER_METRICS_PORT`` (with the standard process, platform and GC collectors). The
business totals (runs, calls, tokens, credits, drift) are the API's ``GET /metrics``, from Postgres.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from prometheus_client import Counter

log = structlog.get_logger(__name__)

CHARGE_WRITE_FAILURES = Counter(
    "runledger_worker_charge_write_failures",
    "Charge writes (receipt, ledger debit, call settlement, usage event) that raised. Each is retried "
    "in place under the same idempotency key; a call whose every try failed is left unsettled with "
    "the charge it owes, which the run's next attempt or reconciliation writes.",
)
RUN_EVENT_PUBLISH_FAILURES = Counter(
    "runledger_worker_run_event_publish_failures",
    "Best-effort run events (text deltas) that could not be written; the run and its billing go on.",
)


@contextmanager
def counting_charge_failures() -> Iterator[None]:
    """Around a charge's writes: counts (and logs) a failure to commit it; the error propagates."""
    try:
        yield
    except Exception as exc:
        CHARGE_WRITE_FAILURES.inc()
        log.error("charge_write_failed", error=f"{type(exc).__name__}: {exc}")
        raise
