"""The process roles of ``runledger`` (SPEC §1): ``migrate``, ``worker``, ``api`` and ``up``.

Contract:
- ``runledger migrate``: Alembic upgrade to head on ``DATABASE_URL``.
- ``runledger worker``: the Temporal worker on ``TEMPORAL_ADDRESS``; loads its graphs (the built-in
  ones and ``--graphs PATH`` / ``RUNLEDGER_GRAPHS_CONFIG``'s project: a bad project exits 2 with one
  line naming the file and the entry, before anything connects), registers the search attributes,
  publishes the graph catalog, then runs until SIGINT/SIGTERM and shuts down gracefully. Its
  process-local Prometheus counters are served on
  ``RUNLEDGER_WORKER_METRICS_HOST``:``RUNLEDGER_WORKER_METRICS_PORT`` (0: off).
- ``runledger api``: the HTTP API (uvicorn) on ``RUNLEDGER_API_HOST``:``RUNLEDGER_API_PORT``.
- ``runledger up``: the embedded dev stack (:mod:`runledger.stack`); ``--graphs PATH`` goes to its worker.
- ``worker`` and ``api`` take a hidden ``--parent-pid``: started so by ``runledger up``, they exit with
  it and wait for the environment it sends on stdin (:func:`_join_stack`).

Heavy modules (the worker, the API app, Temporal, the database) are imported inside the commands.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from runledger import event_loop
from runledger.cli.settings import ConfigError, configure_logging, load_settings, require, with_graphs
from runledger.processes import freeze_startup_heap

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from runledger.config import Settings
    from runledger.projects import GraphRegistry

#: Temporal's core runtime can abort the interpreter at exit while its threads wind down
#: (feasibility §9.1); a short pause before exiting avoids it.
TEMPORAL_EXIT_PAUSE_SECONDS = 0.5


def _join_stack(parent_pid: int, *, preload: Sequence[str]) -> None:
    """Run as a child of ``runledger up``: exit with it, import the heavy modules while the stack is
    still starting, then take the environment it sends as one JSON line on stdin once Postgres and
    Temporal are ready and migrated (EOF: the stack gave up, so exit)."""
    from runledger.processes import bind_to_parent

    bind_to_parent(parent_pid)
    for module in preload:
        importlib.import_module(module)
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("runledger up stopped before this process was started")
    os.environ.update({str(key): str(value) for key, value in json.loads(line).items()})


def _settle_temporal() -> None:
    time.sleep(TEMPORAL_EXIT_PAUSE_SECONDS)


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = load_settings()
    require(settings, "DATABASE_URL")
    configure_logging(settings)
    from db.migrate import upgrade

    upgrade(settings.require_database_url())
    print("runledger migrate: database is at head")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    if args.parent_pid is not None:
        _join_stack(args.parent_pid, preload=("runledger.worker", "runledger.temporal"))
    settings = with_graphs(load_settings(), args)
    require(settings, "DATABASE_URL", "TEMPORAL_ADDRESS")
    # LiteLLM attaches its own log handler at import: import it first, so the JSON handler replaces it.
    importlib.import_module("runledger.worker")
    configure_logging(settings, temporal=True)
    from runledger.projects import ProjectError
    from runledger.worker import load_graphs

    try:
        # Before anything connects: a bad project stops the worker at once, with its one line.
        registry = load_graphs(settings)
        event_loop.run(_worker_main(settings, registry))
    except ProjectError as exc:
        raise ConfigError(str(exc)) from exc
    finally:
        _settle_temporal()
    return 0


async def _worker_main(settings: Settings, registry: GraphRegistry) -> None:
    from runledger.temporal import connect, ensure_search_attributes
    from runledger.worker import run_worker

    log = logging.getLogger("runledger.worker")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = await connect(settings)
    added = await ensure_search_attributes(client, settings.temporal_namespace)
    if added:
        log.info("registered search attributes %s", ", ".join(added))
    metrics_server = _start_worker_metrics(settings)
    log.info(
        "starting the worker on task queue %r at %s (namespace %s)",
        settings.temporal_task_queue,
        settings.temporal_address,
        settings.temporal_namespace,
    )
    try:
        await run_worker(settings, client, stop, registry)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
    log.info("worker stopped")


def _start_worker_metrics(settings: Settings) -> WSGIServer | None:
    """The worker's Prometheus endpoint (its process-local counters, :mod:`activities.metrics`), on
    RUNLEDGER_WORKER_METRICS_PORT; None when that is 0. A port that cannot be bound is logged and the
    worker runs on without it: billing runs matters more than this process's own counters."""
    port = settings.worker_metrics_port
    if not port:
        return None
    from prometheus_client import start_http_server

    import activities.metrics  # noqa: F401  (registers the worker's counters)

    log = logging.getLogger("runledger.worker")
    try:
        server, _ = start_http_server(port, addr=settings.worker_metrics_host)
    except OSError as exc:
        log.error("worker metrics endpoint unavailable on %s:%s: %s", settings.worker_metrics_host, port, exc)
        return None
    log.info("worker metrics on http://%s:%s/metrics", settings.worker_metrics_host, port)
    return server


def cmd_api(args: argparse.Namespace) -> int:
    if args.parent_pid is not None:
        _join_stack(args.parent_pid, preload=("uvicorn", "api.app"))
    settings = load_settings()
    require(settings, "DATABASE_URL", "TEMPORAL_ADDRESS", "RUNLEDGER_ADMIN_TOKEN")
    configure_logging(settings, temporal=True)
    import uvicorn

    from api.app import create_app

    try:
        # The API starts runs with search attributes; on a fresh Temporal it may be up before any worker.
        asyncio.run(_register_search_attributes(settings))
        app = create_app(settings)
        freeze_startup_heap()
        uvicorn.run(
            app,  # on uvloop: uvicorn's loop="auto" picks it (runledger.event_loop)
            host=settings.api_host,
            port=settings.api_port,
            log_level=settings.log_level.lower(),
            # uvicorn's loggers propagate to the root handler, so they are JSON like the rest.
            log_config=None,
        )
    finally:
        _settle_temporal()
    return 0


async def _register_search_attributes(settings: Settings) -> None:
    from runledger.temporal import connect, ensure_search_attributes

    added = await ensure_search_attributes(await connect(settings), settings.temporal_namespace)
    if added:
        logging.getLogger("runledger.api").info("registered search attributes %s", ", ".join(added))


def cmd_up(args: argparse.Namespace) -> int:
    settings = with_graphs(load_settings(), args)
    from runledger.stack import run_up

    try:
        return run_up(settings)
    finally:
        _settle_temporal()


def add_role_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``migrate``, ``worker``, ``api`` and ``up``, in that order."""
    commands: list[tuple[str, str, Callable[[argparse.Namespace], int], bool]] = [
        ("migrate", "apply the database migrations (alembic upgrade head)", cmd_migrate, False),
        ("worker", "run the Temporal worker (workflows and activities)", cmd_worker, True),
        ("api", "serve the HTTP API", cmd_api, True),
        ("up", "run the embedded dev stack: Postgres, Temporal, worker, API, demo data", cmd_up, False),
    ]
    for name, help_text, func, child in commands:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(func=func)
        if child:
            # Set by `runledger up` for its children (see _join_stack); not for humans.
            command.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
        if name in ("worker", "up"):
            command.add_argument(
                "--graphs",
                default=None,
                metavar="PATH",
                help="a graph project's langgraph.json: serve its graphs besides the built-in ones "
                "(default: $RUNLEDGER_GRAPHS_CONFIG)",
            )
