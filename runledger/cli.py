"""The ``runledger`` command: one entry point for every process role (SPEC §1).

Contract:
- ``runledger migrate``: Alembic upgrade to head on ``DATABASE_URL``.
- ``runledger worker``: the Temporal worker on ``TEMPORAL_ADDRESS``; registers the search attributes,
  then runs until SIGINT/SIGTERM and shuts down gracefully.
- ``runledger api``: the HTTP API (uvicorn) on ``RUNLEDGER_API_HOST``:``RUNLEDGER_API_PORT``.
- ``runledger up``: the embedded dev stack (:mod:`runledger.stack`).
- Exit codes: 0 success, 1 failure at run time, 2 bad configuration (message on stderr, no traceback).

Heavy modules are imported inside the commands, so ``--help`` and configuration errors are instant.
LiteLLM is pinned offline for this process and its children before anything can import it.
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

if TYPE_CHECKING:
    from config import Settings

#: Temporal's core runtime can abort the interpreter at exit while its threads wind down
#: (feasibility §9.1); a short pause before exiting avoids it.
TEMPORAL_EXIT_PAUSE_SECONDS = 0.5


class ConfigError(Exception):
    """A required setting is missing or invalid."""


def _settings() -> Settings:
    from pydantic import ValidationError

    from config import Settings

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from exc


def _require(settings: Settings, *names: str) -> None:
    values = {
        "DATABASE_URL": settings.database_url,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "RUNLEDGER_ADMIN_TOKEN": settings.admin_token.get_secret_value() if settings.admin_token else None,
    }
    missing = [name for name in names if not values[name]]
    if missing:
        raise ConfigError(
            f"missing required environment variable(s): {', '.join(missing)} "
            "(`runledger up` starts a dev stack that sets them)"
        )


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if level.upper() != "DEBUG":
        # LiteLLM logs every completion at INFO, through its own handler and again via the root logger.
        logging.getLogger("LiteLLM").setLevel(logging.WARNING)


def _join_stack(parent_pid: int, *, preload: Sequence[str]) -> None:
    """Run as a child of ``runledger up``: exit with it, import the heavy modules while the stack is
    still starting, then take the environment it sends as one JSON line on stdin once Postgres and
    Temporal are ready and migrated (EOF: the stack gave up, so exit)."""
    from runledger.stack import bind_to_parent

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
    settings = _settings()
    _require(settings, "DATABASE_URL")
    from db.migrate import upgrade

    upgrade(settings.require_database_url())
    print("runledger migrate: database is at head")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    if args.parent_pid is not None:
        _join_stack(args.parent_pid, preload=("runledger.worker", "runledger.temporal"))
    settings = _settings()
    _require(settings, "DATABASE_URL", "TEMPORAL_ADDRESS")
    _configure_logging(settings.log_level)
    try:
        asyncio.run(_worker_main(settings))
    finally:
        _settle_temporal()
    return 0


async def _worker_main(settings: Settings) -> None:
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
    log.info(
        "starting the worker on task queue %r at %s (namespace %s)",
        settings.temporal_task_queue,
        settings.temporal_address,
        settings.temporal_namespace,
    )
    await run_worker(settings, client, stop)
    log.info("worker stopped")


def cmd_api(args: argparse.Namespace) -> int:
    if args.parent_pid is not None:
        _join_stack(args.parent_pid, preload=("uvicorn", "api.app"))
    settings = _settings()
    _require(settings, "DATABASE_URL", "TEMPORAL_ADDRESS", "RUNLEDGER_ADMIN_TOKEN")
    _configure_logging(settings.log_level)
    import uvicorn

    from api.app import create_app

    try:
        # The API starts runs with search attributes; on a fresh Temporal it may be up before any worker.
        asyncio.run(_register_search_attributes(settings))
        uvicorn.run(
            create_app(settings),
            host=settings.api_host,
            port=settings.api_port,
            log_level=settings.log_level.lower(),
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
    settings = _settings()
    from runledger.stack import run_up

    try:
        return run_up(settings)
    finally:
        _settle_temporal()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runledger",
        description="Durable LangGraph runs on Temporal, every model call billed into a Postgres ledger.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        code = func(args)
    except ConfigError as exc:
        print(f"runledger {args.command}: {exc}", file=sys.stderr)
        code = 2
    raise SystemExit(code)


if __name__ == "__main__":
    main()
