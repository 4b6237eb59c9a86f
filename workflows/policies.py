"""Named retry policies and timeouts for every activity call."""

from __future__ import annotations

from datetime import timedelta
from typing import Final, TypedDict

from temporalio.common import RetryPolicy

from runledger.contracts.errors import ErrorCode

#: Short database activities (authorize, finalize): retried until the database is back, within
#: the schedule-to-close bound below.
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
)
DB_START_TO_CLOSE = timedelta(seconds=30)
DB_SCHEDULE_TO_CLOSE = timedelta(minutes=30)


class StepOptions(TypedDict):
    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    retry_policy: RetryPolicy


#: Keyword arguments of every short database step.
DB_STEP: Final[StepOptions] = {
    "start_to_close_timeout": DB_START_TO_CLOSE,
    "schedule_to_close_timeout": DB_SCHEDULE_TO_CLOSE,
    "retry_policy": DB_RETRY,
}

#: Graph execution: model providers fail transiently; settled calls are never repeated on retry.
GRAPH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[
        ErrorCode.GRAPH_FAILED,
        ErrorCode.GRAPH_NOT_FOUND,
        ErrorCode.MODEL_NOT_PRICED,
        ErrorCode.CHECKPOINT_NOT_FOUND,
    ],
)
GRAPH_START_TO_CLOSE = timedelta(minutes=10)
#: The execute activity heartbeats every few seconds while the graph runs.
GRAPH_HEARTBEAT = timedelta(seconds=30)
GRAPH_SCHEDULE_TO_CLOSE = timedelta(minutes=60)

#: A run-completion notification: the receiver may be down for a while; each attempt is recorded.
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=12,
    non_retryable_error_types=["notify_url_not_allowed"],
)
NOTIFY_STEP: Final[StepOptions] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "schedule_to_close_timeout": timedelta(hours=6),
    "retry_policy": NOTIFY_RETRY,
}


def seconds(n: float) -> timedelta:
    """A wait of ``n`` seconds, for workflow code: built here, in a module the sandbox passes
    through, because ``from datetime import ...`` inside the sandbox goes through its restricted
    proxy of ``datetime`` on every run (measured: ~5 % of the worker's CPU per run)."""
    return timedelta(seconds=n)
