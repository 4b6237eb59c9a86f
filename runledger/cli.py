"""The ``runledger`` command: one entry point for every process role (SPEC §1).

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
- ``runledger schedules|grants|webhooks|runs ...``: user commands that talk to the HTTP API only
  (:mod:`runledger.api_client`), never to Postgres or Temporal; tables for people, ``--json`` for
  scripts (:mod:`runledger.cli_tables`). API URL: ``--api-url``, else ``RUNLEDGER_API_URL``, else
  ``http://127.0.0.1:{RUNLEDGER_API_PORT or 8000}``; API key: ``--api-key``, else
  ``RUNLEDGER_API_KEY``, else the demo user's key that ``runledger up`` saves in
  ``<RUNLEDGER_DATA_DIR or .runledger>/demo.json``. An API error prints ``error: <code>: <message>``
  on stderr and exits 1, as does an API that cannot be reached.
- ``runledger webhooks send SOURCE``: a delivery as a sender makes it, to try a trigger: the body signed
  with the trigger's secret (``--secret``, else ``RUNLEDGER_WEBHOOK_SECRET``; none: exit 2) per
  :mod:`contracts.webhooks`, posted without the API key (only the API URL is resolved).
- ``runledger runs follow RUN_ID``: the run's events live (status, streamed text, running cost), resumed
  with ``Last-Event-ID`` when the connection drops; exit 0 when the run ends ``success``, else 1.
- Logs (worker, api, migrate, reconcile): one JSON object per line on stderr (:mod:`runledger.logs`).
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
    from datetime import datetime
    from wsgiref.simple_server import WSGIServer

    from runledger.api_client import ApiClient, JsonObject
    from runledger.config import Settings
    from runledger.projects import GraphRegistry

    #: A user command: it calls the API through the client and prints the answer; it may return its
    #: exit code (None: 0).
    RemoteHandler = Callable[[ApiClient, argparse.Namespace], int | None]

#: Temporal's core runtime can abort the interpreter at exit while its threads wind down
#: (feasibility §9.1); a short pause before exiting avoids it.
TEMPORAL_EXIT_PAUSE_SECONDS = 0.5


class ConfigError(Exception):
    """A required setting is missing or invalid."""


def _settings() -> Settings:
    from pydantic import ValidationError

    from runledger.config import Settings

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


def _configure_logging(settings: Settings, *, temporal: bool = False) -> None:
    """Structured logs on stderr (:mod:`runledger.logs`): JSON lines unless RUNLEDGER_LOG_JSON=false;
    ``temporal``: Temporal's core logs too (before the process's first Temporal client)."""
    from runledger.logs import configure_logging

    try:
        configure_logging(settings.log_level, json=settings.log_json)
    except ValueError as exc:
        raise ConfigError(f"RUNLEDGER_LOG_LEVEL: {exc}") from exc
    if temporal:
        from runledger.log_context import forward_temporal_core_logs

        forward_temporal_core_logs()


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
    settings = _settings()
    _require(settings, "DATABASE_URL")
    _configure_logging(settings)
    from db.migrate import upgrade

    upgrade(settings.require_database_url())
    print("runledger migrate: database is at head")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    """One reconciliation pass now, against DATABASE_URL (the worker's schedule runs the same code)."""
    settings = _settings()
    _require(settings, "DATABASE_URL")
    _configure_logging(settings)
    from activities.reconcile import reconcile_once
    from db.session import Database

    threshold = settings.reconcile_after_seconds if args.after_seconds is None else args.after_seconds

    async def run() -> int:
        from activities.sweep import sweep_runs
        from runledger.contracts.reconcile import SweepInput
        from runledger.telemetry import RunTracer
        from runledger.temporal import connect

        database = Database(settings.require_database_url())
        try:
            result = await reconcile_once(database, threshold, settings.event_retention_days)
            if settings.temporal_address:
                swept = await sweep_runs(
                    database,
                    await connect(settings),
                    settings,
                    RunTracer(),
                    SweepInput(older_than_seconds=settings.sweep_after_seconds),
                )
                print(
                    f"runledger reconcile: runs swept: {swept.checked} checked, {swept.started} lost "
                    f"start(s) started, {swept.finalized} run(s) of ended workflows finalized"
                )
        finally:
            await database.dispose()
        print(
            f"runledger reconcile: report {result.report_id}: {result.settled_calls} unsettled model call(s) "
            f"charged, {result.flagged_calls} model call(s) flagged (reasons in the report), "
            f"{result.accounts_with_drift} of {result.accounts_checked} account(s) with balance drift"
        )
        return 1 if result.accounts_with_drift else 0

    return asyncio.run(run())


def _with_graphs(settings: Settings, args: argparse.Namespace) -> Settings:
    """``--graphs PATH`` overrides RUNLEDGER_GRAPHS_CONFIG."""
    if args.graphs is None:
        return settings
    from pathlib import Path

    return settings.model_copy(update={"graphs_config": Path(args.graphs)})


def cmd_worker(args: argparse.Namespace) -> int:
    if args.parent_pid is not None:
        _join_stack(args.parent_pid, preload=("runledger.worker", "runledger.temporal"))
    settings = _with_graphs(_settings(), args)
    _require(settings, "DATABASE_URL", "TEMPORAL_ADDRESS")
    # LiteLLM attaches its own log handler at import: import it first, so the JSON handler replaces it.
    importlib.import_module("runledger.worker")
    _configure_logging(settings, temporal=True)
    from runledger.projects import ProjectError
    from runledger.worker import load_graphs

    try:
        # Before anything connects: a bad project stops the worker at once, with its one line.
        registry = load_graphs(settings)
        asyncio.run(_worker_main(settings, registry))
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
    settings = _settings()
    _require(settings, "DATABASE_URL", "TEMPORAL_ADDRESS", "RUNLEDGER_ADMIN_TOKEN")
    _configure_logging(settings, temporal=True)
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
    settings = _with_graphs(_settings(), args)
    from runledger.stack import run_up

    try:
        return run_up(settings)
    finally:
        _settle_temporal()


# -- user commands over the HTTP API ----------------------------------------------------------------
# They import httpx and rich only (and `webhooks send` the pure contracts.webhooks), inside the
# command, and never the database, Temporal or LiteLLM.


def _remote(handler: RemoteHandler, *, authenticated: bool = True) -> Callable[[argparse.Namespace], int]:
    """Wrap a user command: resolve the connection, run it, turn API failures into exit code 1.
    ``authenticated`` False: only the API URL is resolved and no API key is sent (a webhook delivery)."""

    def run(args: argparse.Namespace) -> int:
        from runledger.api_client import (
            ApiClient,
            ApiError,
            ApiUnreachable,
            ClientConfigError,
            resolve_api_url,
            resolve_connection,
        )

        api_key: str | None = None
        key_source: str | None = None
        try:
            if authenticated:
                connection = resolve_connection(args.api_url, args.api_key, os.environ)
                api_url, api_key, key_source = connection.api_url, connection.api_key, connection.key_source
            else:
                api_url = resolve_api_url(args.api_url, os.environ)
        except ClientConfigError as exc:
            raise ConfigError(str(exc)) from exc
        try:
            with ApiClient(api_url, api_key, timeout=args.timeout) as client:
                code = handler(client, args)
        except ApiError as exc:
            hint = ""
            if exc.code == "unauthorized" and key_source is not None:
                hint = f" (API key from {key_source})"
            print(f"error: {exc.code}: {exc.message}{hint}", file=sys.stderr)
            return 1
        except ApiUnreachable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        return code or 0

    return run


def _show(args: argparse.Namespace, data: object, view: Callable[[], object]) -> None:
    """``--json``: the API's JSON as it came; otherwise the rich view ``view()`` builds."""
    from runledger.cli_tables import show

    show(args.as_json, data, view)


def _say(args: argparse.Namespace, data: object, text: str) -> None:
    from rich.text import Text

    _show(args, data, lambda: Text(text))


def _json_object(value: str) -> JsonObject:
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError('must be a JSON object, e.g. \'{"topic": "the sea"}\'')
    return parsed


def _payload(value: str) -> bytes:
    """``--data``: the text as given, or the bytes of ``@FILE`` (``@-``: stdin), sent as they are."""
    if not value.startswith("@"):
        return value.encode()
    name = value[1:]
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        with open(name, "rb") as file:
            return file.read()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {name!r}: {exc.strerror or exc}") from None


def _delivery_id(value: str) -> str:
    from runledger.contracts.webhooks import valid_delivery_id

    # ASCII too: it travels as an HTTP header.
    if not (valid_delivery_id(value) and value.isascii()):
        raise argparse.ArgumentTypeError("must be 1 to 255 printable ASCII characters")
    return value


class _InputMapping(argparse.Action):
    """``--map FIELD=POINTER``, repeatable, gathered into one ``{field: pointer}``; a field mapped twice
    is a usage error. The pointer may be empty (the whole payload)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[object] | None,
        option_string: str | None = None,
    ) -> None:
        field, equals, pointer = str(values).partition("=")
        if not field or not equals:
            parser.error(f"{option_string}: expected FIELD=POINTER, e.g. topic=/issue/title; got {values!r}")
        mapping: dict[str, str] = dict(getattr(namespace, self.dest) or {})
        if field in mapping:
            parser.error(f"{option_string}: input field {field!r} is mapped twice")
        mapping[field] = pointer
        setattr(namespace, self.dest, mapping)


def _non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return number


def _now() -> datetime:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _schedules_list(client: ApiClient, args: argparse.Namespace) -> None:
    from runledger.cli_tables import schedules_table

    answer = client.list_schedules()
    _show(args, answer, lambda: schedules_table(answer["schedules"]))


def _schedules_show(client: ApiClient, args: argparse.Namespace) -> None:
    from runledger.cli_tables import schedule_view

    answer = client.get_schedule(args.schedule_id)
    _show(args, answer, lambda: schedule_view(answer))


def _schedules_create(client: ApiClient, args: argparse.Namespace) -> None:
    from rich.console import Group
    from rich.text import Text

    from runledger.cli_tables import schedule_view

    body: JsonObject = {
        "graph_id": args.graph,
        "input": args.input,
        "cron": args.cron,
        "timezone": args.timezone,
        "enabled": not args.disabled,
    }
    if args.overlap is not None:
        body["overlap"] = args.overlap
    if args.catchup_window_seconds is not None:
        body["catchup_window_seconds"] = args.catchup_window_seconds
    if args.grant is not None:
        body["grant_id"] = args.grant
    answer = client.create_schedule(body)
    _show(
        args,
        answer,
        lambda: Group(Text(f"created schedule {answer['schedule_id']}", style="bold"), schedule_view(answer)),
    )


def _schedules_update(client: ApiClient, args: argparse.Namespace) -> None:
    from rich.console import Group
    from rich.text import Text

    from runledger.cli_tables import schedule_view

    changes: JsonObject = {}
    for field in ("input", "cron", "timezone", "overlap", "catchup_window_seconds"):
        if getattr(args, field) is not None:
            changes[field] = getattr(args, field)
    answer = client.patch_schedule(args.schedule_id, changes)
    _show(
        args,
        answer,
        lambda: Group(Text(f"updated schedule {answer['schedule_id']}", style="bold"), schedule_view(answer)),
    )


def _set_enabled(client: ApiClient, args: argparse.Namespace, *, enabled: bool) -> None:
    from runledger.cli_tables import when

    answer = client.patch_schedule(args.schedule_id, {"enabled": enabled})
    if enabled:
        upcoming = when(answer.get("next_run_at"), answer.get("timezone"))
        text = f"resumed schedule {answer['schedule_id']}; next run {upcoming}"
    else:
        text = f"paused schedule {answer['schedule_id']}; no slot runs until `runledger schedules resume`"
    _say(args, answer, text)


def _schedules_pause(client: ApiClient, args: argparse.Namespace) -> None:
    _set_enabled(client, args, enabled=False)


def _schedules_resume(client: ApiClient, args: argparse.Namespace) -> None:
    _set_enabled(client, args, enabled=True)


def _schedules_trigger(client: ApiClient, args: argparse.Namespace) -> None:
    answer = client.trigger_schedule(args.schedule_id)
    _say(
        args,
        answer,
        f"triggered schedule {answer['schedule_id']}; "
        f"see its run with `runledger runs list --schedule {answer['schedule_id']}`",
    )


def _schedules_delete(client: ApiClient, args: argparse.Namespace) -> None:
    client.delete_schedule(args.schedule_id)
    _say(
        args,
        {"schedule_id": args.schedule_id, "deleted": True},
        f"deleted schedule {args.schedule_id} (its Temporal schedule is gone, its run history is kept)",
    )


def _grants_list(client: ApiClient, args: argparse.Namespace) -> None:
    from runledger.cli_tables import emit_json, grants_table

    answer = client.list_grants()
    if args.as_json:
        emit_json(answer)
        return
    # Which schedule bills through which grant: revoking a schedule's grant stops its runs.
    used_by: dict[str, list[str]] = {}
    for schedule in client.list_schedules()["schedules"]:
        used_by.setdefault(schedule["grant_id"], []).append(schedule["schedule_id"])
    now = _now()
    _show(args, answer, lambda: grants_table(answer["grants"], now, used_by))


def _grants_create(client: ApiClient, args: argparse.Namespace) -> None:
    from rich.console import Group
    from rich.text import Text

    from runledger.cli_tables import grant_view

    body: JsonObject = {"scopes": args.scopes}
    if args.max_credits is not None:
        body["max_credits"] = args.max_credits
    if args.expires_at is not None:
        body["expires_at"] = args.expires_at
    answer = client.create_grant(body)
    now = _now()
    _show(
        args,
        answer,
        lambda: Group(Text(f"created grant {answer['grant_id']}", style="bold"), grant_view(answer, now)),
    )


def _grants_revoke(client: ApiClient, args: argparse.Namespace) -> None:
    client.revoke_grant(args.grant_id)
    _say(
        args,
        {"grant_id": args.grant_id, "revoked": True},
        f"revoked grant {args.grant_id}; runs that rely on it are refused from now on",
    )


def _keys_list(client: ApiClient, args: argparse.Namespace) -> None:
    from runledger.cli_tables import api_keys_table

    answer = client.list_api_keys()
    _show(args, answer, lambda: api_keys_table(answer["api_keys"]))


def _keys_create(client: ApiClient, args: argparse.Namespace) -> None:
    from runledger.cli_tables import api_key_created

    answer = client.create_api_key({} if args.name is None else {"name": args.name})
    _show(args, answer, lambda: api_key_created(answer))


def _keys_revoke(client: ApiClient, args: argparse.Namespace) -> None:
    client.revoke_api_key(args.key_id)
    _say(
        args,
        {"key_id": args.key_id, "revoked": True},
        f"revoked API key {args.key_id}; it is refused from the next request on",
    )


def _webhooks_list(client: ApiClient, args: argparse.Namespace) -> None:
    from runledger.cli_tables import webhook_triggers_table

    answer = client.list_webhook_triggers()
    _show(args, answer, lambda: webhook_triggers_table(answer["webhook_triggers"], client.api_url))


def _webhooks_create(client: ApiClient, args: argparse.Namespace) -> None:
    from rich.console import Group
    from rich.text import Text

    from runledger.cli_tables import note, webhook_secret, webhook_trigger_view

    body: JsonObject = {"source": args.source, "graph_id": args.graph}
    if args.input is not None:
        body["input"] = args.input
    if args.input_mapping is not None:
        body["input_mapping"] = args.input_mapping
    if args.grant is not None:
        body["grant_id"] = args.grant
    answer = client.create_webhook_trigger(body)
    _show(
        args,
        answer,
        lambda: Group(
            Text(f"created webhook trigger {answer['trigger_id']}", style="bold"),
            webhook_trigger_view(answer, client.api_url),
            Text(""),
            webhook_secret(answer["secret"]),
            note(f"try it: runledger webhooks send {answer['source']} --secret SECRET --data 'JSON payload'"),
        ),
    )


def _webhooks_delete(client: ApiClient, args: argparse.Namespace) -> None:
    client.delete_webhook_trigger(args.trigger_id)
    _say(
        args,
        {"trigger_id": args.trigger_id, "deleted": True},
        f"deleted webhook trigger {args.trigger_id}; its deliveries start no more runs "
        "(a grant it made for itself is revoked, its runs are kept)",
    )


def _webhooks_send(client: ApiClient, args: argparse.Namespace) -> None:
    import uuid

    from rich.console import Group
    from rich.text import Text

    from runledger.cli_tables import note, webhook_runs_table
    from runledger.contracts.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

    secret = args.secret or os.environ.get("RUNLEDGER_WEBHOOK_SECRET")
    if not secret:
        raise ConfigError(
            "no webhook secret: pass --secret or set RUNLEDGER_WEBHOOK_SECRET "
            "(`runledger webhooks create` prints a trigger's secret once)"
        )
    delivery_id = args.delivery_id or f"cli-{uuid.uuid4()}"
    timestamp = int(time.time())
    headers = {
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp=timestamp, delivery_id=delivery_id, body=args.data),
    }
    answer = client.deliver_webhook(args.source, args.data, headers)

    def view() -> object:
        runs = answer["runs"]
        started = sum(1 for r in runs if r["created"])
        if started:
            head = f"delivery {answer['delivery_id']}: started {started} run(s)"
        else:
            head = f"delivery {answer['delivery_id']} was received before: no new run; the runs it started"
        return Group(
            Text(head, style="bold"),
            webhook_runs_table(runs),
            note("follow a run with `runledger runs follow RUN_ID` (the trigger owner's API key)"),
        )

    _show(args, answer, view)


def _runs_list(client: ApiClient, args: argparse.Namespace) -> None:
    from rich.console import Group

    from runledger.cli_tables import note, runs_table

    params: dict[str, str | int] = {"limit": args.limit}
    for name, value in (
        ("status", args.status),
        ("graph_id", args.graph),
        ("schedule_id", args.schedule),
        ("run_kind", args.kind),
        ("cursor", args.cursor),
    ):
        if value is not None:
            params[name] = value
    answer = client.list_runs(params)

    def view() -> object:
        table = runs_table(answer["runs"])
        if answer.get("next_cursor"):
            return Group(table, note(f"more runs: add --cursor {answer['next_cursor']}"))
        return table

    _show(args, answer, view)


def _runs_show(client: ApiClient, args: argparse.Namespace) -> None:
    from runledger.cli_tables import run_view

    run = client.get_run(args.run_id)
    receipts = client.run_charges(args.run_id)["receipts"]
    _show(args, {"run": run, "charges": receipts}, lambda: run_view(run, receipts))


def _runs_follow(client: ApiClient, args: argparse.Namespace) -> int:
    """Follow a run's events live; exit 0 when it ends ``success``, else 1."""

    def reconnecting(why: str) -> None:
        print(f"runledger runs follow: {why}", file=sys.stderr, flush=True)

    events = client.run_events(args.run_id, after=args.after, on_reconnect=reconnecting)
    status: str | None = None
    if args.as_json:
        for event in events:
            sys.stdout.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
            if event.event in ("done", "error") and isinstance(event.data, dict):
                status = event.data.get("status")
    else:
        from rich.live import Live

        from runledger.cli_tables import FollowState, follow_summary, follow_view, make_console

        state = FollowState(args.run_id)
        console = make_console()
        with Live(follow_view(state), console=console, auto_refresh=False, transient=True) as live:
            for event in events:
                for finished in state.apply(event.event, event.data):
                    live.console.print(finished)
                live.update(follow_view(state), refresh=True)
        for finished in state.flush():
            console.print(finished)
        console.print(follow_summary(state))
        if state.final is not None:
            status = state.status
    if status is None:
        # The stream ended without its terminal event (already read, or pruned): ask the run.
        status = str(client.get_run(args.run_id).get("status"))
    return 0 if status == "success" else 1


def _add_api_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from runledger.api_client import DEFAULT_TIMEOUT_SECONDS, OVERLAP_POLICIES
    from runledger.contracts.runs import RunKind, RunStatus

    common = argparse.ArgumentParser(add_help=False)
    connection = common.add_argument_group("connection")
    connection.add_argument(
        "--api-url",
        default=None,
        help="the runledger API (default: $RUNLEDGER_API_URL, else http://127.0.0.1:$RUNLEDGER_API_PORT "
        "with port 8000)",
    )
    connection.add_argument(
        "--api-key",
        default=None,
        help="a user's API key (default: $RUNLEDGER_API_KEY, else the demo user's key that `runledger up` "
        "saves in $RUNLEDGER_DATA_DIR/demo.json)",
    )
    connection.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds to wait for the API (default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    common.add_argument(
        "--json", dest="as_json", action="store_true", help="print the API's JSON instead of a table"
    )

    def group(name: str, help_text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        parser = sub.add_parser(name, help=help_text, description=help_text)
        return parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def leaf(
        actions: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        help_text: str,
        handler: RemoteHandler,
        *,
        authenticated: bool = True,
    ) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help_text, description=help_text, parents=[common])
        parser.set_defaults(func=_remote(handler, authenticated=authenticated))
        return parser

    overlap_help = (
        f"what to do when a slot is due while the last run still runs: {', '.join(OVERLAP_POLICIES)}"
    )

    schedules = group("schedules", "cron schedules of graph runs (Temporal Schedules), through the API")
    leaf(schedules, "list", "list your schedules", _schedules_list)
    show = leaf(schedules, "show", "a schedule with its next run times and recent runs", _schedules_show)
    show.add_argument("schedule_id", metavar="SCHEDULE_ID")
    create = leaf(schedules, "create", "create a schedule (and its grant, unless --grant)", _schedules_create)
    create.add_argument("--graph", required=True, help="graph id, e.g. langgraph:poet")
    create.add_argument("--cron", required=True, help='five-field cron, e.g. "0 9 * * *"')
    create.add_argument("--timezone", required=True, help="IANA time zone of the cron, e.g. Europe/Paris")
    create.add_argument(
        "--input",
        required=True,
        type=_json_object,
        help='graph input as a JSON object, e.g. \'{"topic": "x"}\'',
    )
    create.add_argument(
        "--overlap", choices=OVERLAP_POLICIES, default=None, help=overlap_help + " (default skip)"
    )
    create.add_argument(
        "--catchup-window-seconds",
        type=_non_negative_int,
        default=None,
        help="how late a missed slot may still run (default 3600)",
    )
    create.add_argument(
        "--grant", default=None, metavar="GRANT_ID", help="bill through this grant instead of a new one"
    )
    create.add_argument("--disabled", action="store_true", help="create it paused")
    update = leaf(
        schedules, "update", "change a schedule's input, cron, time zone or policies", _schedules_update
    )
    update.add_argument("schedule_id", metavar="SCHEDULE_ID")
    update.add_argument("--input", type=_json_object, default=None, help="new graph input (JSON object)")
    update.add_argument("--cron", default=None, help="new five-field cron")
    update.add_argument("--timezone", default=None, help="new IANA time zone")
    update.add_argument("--overlap", choices=OVERLAP_POLICIES, default=None, help=overlap_help)
    update.add_argument("--catchup-window-seconds", type=_non_negative_int, default=None)
    for name, help_text, handler in (
        ("pause", "pause a schedule (PATCH enabled=false)", _schedules_pause),
        ("resume", "resume a paused schedule (PATCH enabled=true)", _schedules_resume),
        ("trigger", "run a schedule now, outside its cron", _schedules_trigger),
        ("delete", "delete a schedule; its own grant is revoked, its runs are kept", _schedules_delete),
    ):
        leaf(schedules, name, help_text, handler).add_argument("schedule_id", metavar="SCHEDULE_ID")

    grants = group("grants", "execution grants (who may run which graphs on your credits), through the API")
    leaf(grants, "list", "list your grants", _grants_list)
    grant_create = leaf(grants, "create", "create a grant", _grants_create)
    grant_create.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        required=True,
        help="graph:execute:{graph_id} or graph:execute:* (repeat for several)",
    )
    grant_create.add_argument(
        "--max-credits", type=_non_negative_int, default=None, help="spending cap in credits"
    )
    grant_create.add_argument(
        "--expires-at", default=None, help="ISO-8601 time with a zone, e.g. 2030-01-01T00:00:00Z"
    )
    leaf(grants, "revoke", "revoke a grant (runs relying on it are refused)", _grants_revoke).add_argument(
        "grant_id", metavar="GRANT_ID"
    )

    keys = group("keys", "your API keys (create, list, revoke), through the API")
    leaf(keys, "list", "list your API keys (never the keys themselves)", _keys_list)
    leaf(keys, "create", "create an API key (shown once)", _keys_create).add_argument(
        "--name", default=None, help="a label to tell the key apart"
    )
    leaf(keys, "revoke", "revoke an API key (refused from the next request on)", _keys_revoke).add_argument(
        "key_id", metavar="KEY_ID"
    )

    webhooks = group(
        "webhooks", "webhook triggers (signed deliveries that start graph runs), through the API"
    )
    leaf(webhooks, "list", "list your webhook triggers", _webhooks_list)
    hook_create = leaf(
        webhooks,
        "create",
        "create a webhook trigger (and its grant, unless --grant); its signing secret is shown once",
        _webhooks_create,
    )
    hook_create.add_argument(
        "--source",
        required=True,
        help="where deliveries are posted, /api/v1/webhooks/SOURCE (lower-case letters, digits, - and _)",
    )
    hook_create.add_argument("--graph", required=True, help="graph id, e.g. langgraph:poet")
    hook_create.add_argument(
        "--input",
        type=_json_object,
        default=None,
        help="fixed graph input as a JSON object (default {}); --map fields are set on top of it",
    )
    hook_create.add_argument(
        "--map",
        dest="input_mapping",
        action=_InputMapping,
        default=None,
        metavar="FIELD=POINTER",
        help="set graph input FIELD from the delivery's JSON at this RFC 6901 pointer, e.g. "
        "topic=/issue/title (topic= is the whole payload); repeat for several",
    )
    hook_create.add_argument(
        "--grant", default=None, metavar="GRANT_ID", help="bill through this grant instead of a new one"
    )
    leaf(
        webhooks,
        "delete",
        "delete a webhook trigger; a grant it made for itself is revoked, its runs are kept",
        _webhooks_delete,
    ).add_argument("trigger_id", metavar="TRIGGER_ID")
    send = leaf(
        webhooks,
        "send",
        "try a trigger: sign a delivery with its secret and post it to /api/v1/webhooks/SOURCE as a "
        "sender would (without the API key); prints the runs it started, or that a re-delivery found",
        _webhooks_send,
        authenticated=False,
    )
    send.add_argument("source", metavar="SOURCE", help="the triggers' source, as given to create")
    send.add_argument(
        "--secret", default=None, help="the trigger's signing secret (default: $RUNLEDGER_WEBHOOK_SECRET)"
    )
    send.add_argument(
        "--data",
        required=True,
        type=_payload,
        metavar="JSON|@FILE",
        help="the payload, sent byte for byte: JSON text, or @FILE to read it from a file (@- stdin)",
    )
    send.add_argument(
        "--delivery-id",
        type=_delivery_id,
        default=None,
        metavar="ID",
        help="the delivery's id; sending the same id again is a re-delivery, which starts no new run "
        "(default: cli-<uuid4>)",
    )

    runs = group("runs", "graph runs and their charges, through the API")
    runs_list = leaf(runs, "list", "list your runs, newest first", _runs_list)
    runs_list.add_argument("--status", choices=[s.value for s in RunStatus], default=None)
    runs_list.add_argument("--graph", default=None, metavar="GRAPH_ID")
    runs_list.add_argument("--schedule", default=None, metavar="SCHEDULE_ID")
    runs_list.add_argument("--kind", choices=[k.value for k in RunKind], default=None)
    runs_list.add_argument("--limit", type=int, default=20, help="1-100 (default 20)")
    runs_list.add_argument("--cursor", default=None, help="next page, as printed under the table")
    leaf(runs, "show", "a run's detail with its charges", _runs_show).add_argument("run_id", metavar="RUN_ID")
    follow = leaf(
        runs,
        "follow",
        "follow a run live: its status, model output as it streams and running cost, until it ends "
        "(exit 0 when it ends success, else 1; --json: one event per line)",
        _runs_follow,
    )
    follow.add_argument("run_id", metavar="RUN_ID")
    follow.add_argument(
        "--after",
        default=None,
        metavar="EVENT_ID",
        help="start after this event id (default: from the first)",
    )
    from runledger.cli_runs import add_step_commands

    add_step_commands(runs, leaf)


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
        if name in ("worker", "up"):
            command.add_argument(
                "--graphs",
                default=None,
                metavar="PATH",
                help="a graph project's langgraph.json: serve its graphs besides the built-in ones "
                "(default: $RUNLEDGER_GRAPHS_CONFIG)",
            )
    reconcile = sub.add_parser(
        "reconcile",
        help="charge unsettled model calls, flag what cannot be settled, report balance drift (exit 1 on drift)",
        description="charge unsettled model calls, flag what cannot be settled, report balance drift (exit 1 on drift)",
    )
    reconcile.add_argument(
        "--after-seconds",
        type=int,
        default=None,
        help="flag pending calls older than this (default RUNLEDGER_RECONCILE_AFTER_SECONDS)",
    )
    reconcile.set_defaults(func=cmd_reconcile)
    _add_api_commands(sub)
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
