"""Publishing a run's live events from the worker.

Facts that change state (status, usage) are appended inside the transaction that makes the change,
so the stream never disagrees with the ledger. Text deltas are best effort: they are coalesced (at
most one write per ``min_interval`` seconds per call) and a failed write is logged and counted,
never raised — a run's execution and billing never depend on anyone listening.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from activities.metrics import RUN_EVENT_PUBLISH_FAILURES
from db import events
from db.session import Database
from runledger.tools import ToolEventSink

log = structlog.get_logger(__name__)


def tool_event_sink(database: Database, run_id: str) -> ToolEventSink:
    """Where a run's tool runner reports: each ``tool_call_start`` / ``tool_call_result`` is a fact
    of the run and commits before the runner goes on (a failed write fails the call's activity)."""

    async def emit(event: str, data: dict[str, Any]) -> None:
        async with database.transaction() as session:
            await events.append(session, run_id=run_id, events=[(event, data)])

    return emit


class TextStream:
    """Coalesces one model call's text deltas into ``text_delta`` events."""

    def __init__(
        self, database: Database, *, run_id: str, call_key: str, node: str, min_interval: float = 0.05
    ) -> None:
        self._db = database
        self._run_id = run_id
        self._call_key = call_key
        self._node = node
        self._min_interval = min_interval
        self._buffer: list[str] = []
        self._last_flush = 0.0
        self.failures = 0

    async def __call__(self, delta: str) -> None:
        self._buffer.append(delta)
        if time.monotonic() - self._last_flush >= self._min_interval:
            await self.flush()

    async def flush(self) -> None:
        if not self._buffer:
            return
        text, self._buffer = "".join(self._buffer), []
        self._last_flush = time.monotonic()
        try:
            async with self._db.transaction() as session:
                await events.append(
                    session,
                    run_id=self._run_id,
                    events=[("text_delta", {"call_key": self._call_key, "node": self._node, "text": text})],
                )
        except Exception as exc:
            self.failures += 1
            on_publish_failure(self._run_id, exc)


def on_publish_failure(run_id: str, exc: Exception) -> None:
    """Counts and logs a failed best-effort event write; never raises."""
    RUN_EVENT_PUBLISH_FAILURES.inc()
    log.warning("run_event_publish_failed", run_id=run_id, error=f"{type(exc).__name__}: {exc}")
