"""One LISTEN connection per API process that wakes the event streams of the runs it hears about.

Streams wait on an in-memory ``asyncio.Event`` per run, not on a connection of their own, so a
thousand open streams cost one Postgres connection. A stream also re-reads on a short timeout, so a
notification lost while the listener reconnects only delays events, never loses them.
"""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import structlog

from db.events import CHANNEL
from db.session import libpq_url

log = structlog.get_logger(__name__)


class RunEventListener:
    def __init__(self, database_url: str) -> None:
        self._url = libpq_url(database_url)
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="run-event-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(self, run_id: str, within: float) -> None:
        """Return when the run has new events, or after ``within`` seconds."""
        event = asyncio.Event()
        self._waiters.setdefault(run_id, set()).add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), within)
        finally:
            waiting = self._waiters.get(run_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiters[run_id]

    def _wake(self, run_id: str) -> None:
        for event in self._waiters.get(run_id, ()):
            event.set()

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    # Anything committed while we were (re)connecting: wake everyone to re-read.
                    for run_id in list(self._waiters):
                        self._wake(run_id)
                    async for notify in conn.notifies():
                        # One run id, or a batch of them (db.events.append_many).
                        for run_id in notify.payload.split(","):
                            self._wake(run_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("run_event_listener_reconnecting", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)
