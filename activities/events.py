"""Publishing a run's live events from the worker.

Facts that change state (status, usage) are appended inside the transaction that makes the change,
so the stream never disagrees with the ledger. Text deltas are best effort and cheap:

- A streamed model call hands each delta to its :class:`TextStream`, which only appends it to the
  process-wide :class:`EventWriter` buffer (no I/O per chunk).
- The writer flushes every ``interval`` seconds (50 ms): all buffered deltas of every run in the
  worker, consecutive deltas of one call merged into one ``text_delta`` event, in ONE statement
  (``db.events.append_many``: raw psycopg on the single-statement pool, one NOTIFY per batch). So a
  live reader sees text within about ``interval`` plus a round trip, and a worker streaming a
  thousand calls pays one insert per flush, not one transaction per run.
- Before a call is charged its stream is synced (:meth:`TextStream.flush` waits until everything it
  buffered is written), so a call's text always precedes its ``usage`` event.
- A failed write is logged and counted, never raised: a run's execution and billing never depend on
  anyone listening. (The statement pool retries a statement once on a dead connection, so a write
  that committed just before its connection died may appear twice; text deltas tolerate that.)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from typing import Any

import structlog

from activities.metrics import RUN_EVENT_PUBLISH_FAILURES
from db import events
from db.session import Database
from runledger.tools import ToolEventSink

log = structlog.get_logger(__name__)


def tool_event_sink(database: Database, run_id: str) -> ToolEventSink:
    """Where a run's tool runner reports: each ``tool_call_start`` / ``tool_call_result`` commits
    before the runner goes on. A failed write is counted and logged, never raised: the tool call it
    describes has happened (or been refused) either way, and must not fail or repeat for its event."""

    async def emit(event: str, data: dict[str, Any]) -> None:
        try:
            async with database.transaction() as session:
                await events.append(session, run_id=run_id, events=[(event, data)])
        except Exception as exc:
            on_publish_failure(run_id, exc)

    return emit


class EventWriter:
    """Buffers the text deltas of every run in this process and writes them in batches.

    Used from the worker's event loop only (the activities' loop); :func:`writer_for` gives the one
    writer of a :class:`Database`. ``add`` never blocks; ``sync`` waits for what was added before it.
    """

    def __init__(self, database: Database, *, interval: float = 0.05, max_batch: int = 5000) -> None:
        self._db = database
        self._interval = interval
        self._max_batch = max_batch
        #: (run_id, call_key, attempt) -> [node, text parts]; insertion order is write order.
        self._buffer: dict[tuple[str, str, int], tuple[str, list[str]]] = {}
        self._added = 0  # deltas added so far
        self._written = 0  # deltas whose batch has been attempted
        self._pending = asyncio.Event()
        self._urgent = asyncio.Event()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0

    def add(self, run_id: str, call_key: str, node: str, text: str, attempt: int = 1) -> None:
        entry = self._buffer.get((run_id, call_key, attempt))
        if entry is None:
            self._buffer[(run_id, call_key, attempt)] = (node, [text])
        else:
            entry[1].append(text)
        self._added += 1
        self._pending.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="run-event-writer")

    async def sync(self) -> None:
        """Return once every delta added before this call has been written (or its write failed)."""
        target = self._added
        if self._written >= target:
            return
        self._urgent.set()  # a call is waiting to be charged: do not wait out the window
        async with self._progress:
            await self._progress.wait_for(lambda: self._written >= target)

    async def close(self) -> None:
        await self.sync()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._pending.wait()
            # The coalescing window: deltas arriving meanwhile join this batch.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._urgent.wait(), self._interval)
            self._pending.clear()
            self._urgent.clear()
            await self._flush()

    async def _flush(self) -> None:
        if not self._buffer:
            async with self._progress:
                self._written = self._added
                self._progress.notify_all()
            return
        taken, self._buffer = self._buffer, {}
        upto = self._added
        rows = [
            (
                run_id,
                "text_delta",
                {"call_key": call_key, "node": node, "text": "".join(parts), "attempt": attempt},
            )
            for (run_id, call_key, attempt), (node, parts) in taken.items()
        ]
        try:
            for start in range(0, len(rows), self._max_batch):
                await self._db.single_statement(
                    functools.partial(events.append_many, events=rows[start : start + self._max_batch])
                )
        except Exception as exc:
            self.failures += 1
            on_publish_failure(",".join(sorted({r[0] for r in rows}))[:200], exc)
        finally:
            async with self._progress:
                self._written = upto
                self._progress.notify_all()


_writers: weakref.WeakKeyDictionary[Database, EventWriter] = weakref.WeakKeyDictionary()


def writer_for(database: Database) -> EventWriter:
    """The process-wide writer of this database (made on first use, on the running loop)."""
    writer = _writers.get(database)
    if writer is None:
        writer = _writers[database] = EventWriter(database)
    return writer


class TextStream:
    """One model call's text deltas, written as ``text_delta`` events through the batched writer."""

    def __init__(
        self, database: Database, *, run_id: str, call_key: str, node: str, attempt: int = 1
    ) -> None:
        self._writer = writer_for(database)
        self._run_id = run_id
        self._call_key = call_key
        self._node = node
        #: The execution attempt streaming: a retried step streams its call again under a higher
        #: attempt, and a reader replaces that call's text rather than appending to it.
        self._attempt = attempt

    async def __call__(self, delta: str) -> None:
        self._writer.add(self._run_id, self._call_key, self._node, delta, self._attempt)

    async def flush(self) -> None:
        """Wait until this call's text so far is written: its ``usage`` event comes after it."""
        await self._writer.sync()


def on_publish_failure(run_id: str, exc: Exception) -> None:
    """Counts and logs a failed best-effort event write; never raises."""
    RUN_EVENT_PUBLISH_FAILURES.inc()
    log.warning("run_event_publish_failed", run_id=run_id, error=f"{type(exc).__name__}: {exc}")
