"""A Temporal worker interceptor that names the run in every log line of an activity.

Around each activity execution it binds, in :mod:`structlog.contextvars`, the ``workflow_id``, our
``run_id`` (for a ``graph-run:{run_id}`` workflow), the ``activity`` type and its Temporal ``attempt``.
Each activity runs in its own asyncio task, and LangGraph's node tasks copy their parent's context,
so the binding reaches the graph's nodes and the meter, and ends with the activity.

:func:`forward_temporal_core_logs` sends the logs of Temporal's Rust core (which otherwise writes its
own console format to stderr) through the standard library, hence through the JSON handler.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog
from temporalio import activity
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from runledger.logs import run_context


class LogContextInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLogContext(next)


class _ActivityLogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        with structlog.contextvars.bound_contextvars(
            **run_context(info.workflow_id), activity=info.activity_type, attempt=info.attempt
        ):
            return await super().execute_activity(input)


def forward_temporal_core_logs() -> bool:
    """Make the process's default Temporal runtime forward its core's logs (WARN and up) to the
    ``temporalio.core`` logger. Call it before the first client connects; False (and nothing
    changed) when a default runtime was already set."""
    runtime = Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            )
        )
    )
    try:
        Runtime.set_default(runtime)
    except RuntimeError:
        return False
    return True
