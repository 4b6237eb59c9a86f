"""The operator's maintenance commands, run against ``DATABASE_URL``: ``reconcile`` and ``rotate-secrets``.

Contract:
- ``runledger reconcile``: one reconciliation pass now (the worker's schedule runs the same code):
  unsettled model calls charged, what cannot be settled flagged (up to 20 listed, one per line; the
  report has all), balance drift reported; then, when ``TEMPORAL_ADDRESS`` is set, one sweep of lost
  run starts and ended workflows. Exit 1 when an account drifted, else 0.
- ``runledger rotate-secrets``: every stored secret (webhook secrets, connection credentials)
  re-encrypted under the newest ``RUNLEDGER_SECRET_KEYS`` key in one transaction; ``--new-key`` only
  prints a fresh key to prepend, and needs no database.
- Logs: one JSON object per line on stderr (:mod:`runledger.logs`); a missing or bad setting is a
  :class:`~runledger.cli.settings.ConfigError` (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio

from runledger.cli.settings import ConfigError, configure_logging, load_settings, require

#: Flagged calls ``runledger reconcile`` prints one per line (the admin report lists them all).
_LISTED_FLAGS = 20


def cmd_reconcile(args: argparse.Namespace) -> int:
    """One reconciliation pass now, against DATABASE_URL (the worker's schedule runs the same code)."""
    settings = load_settings()
    require(settings, "DATABASE_URL")
    configure_logging(settings)
    from activities.reconcile import reconcile_once
    from db import reconciliation
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
            async with database.transaction() as session:
                report = await reconciliation.last_report(session)
            flagged = [] if report is None else list(report.details.get("flagged_calls", []))
            for call in flagged[:_LISTED_FLAGS]:
                print(
                    f"runledger reconcile: flagged run {call.get('run_id')} call {call.get('call_key')} "
                    f"(attempt {call.get('attempt')}): {call.get('reason')}"
                )
            if len(flagged) > _LISTED_FLAGS:
                print(f"runledger reconcile: … and {len(flagged) - _LISTED_FLAGS} more in the report")
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


def cmd_rotate_secrets(args: argparse.Namespace) -> int:
    """Re-encrypt every stored secret under the newest RUNLEDGER_SECRET_KEYS key (``db.secrets``);
    ``--new-key`` only prints a fresh key to prepend."""
    from db.secrets import SecretBox, SecretKeysError

    if args.new_key:
        print(SecretBox.new_key())
        return 0
    settings = load_settings()
    require(settings, "DATABASE_URL")
    configure_logging(settings)
    try:
        box = SecretBox.from_setting(
            settings.secret_keys.get_secret_value() if settings.secret_keys else None
        )
    except SecretKeysError as exc:
        raise ConfigError(str(exc)) from exc

    async def run() -> int:
        from db import connections, webhooks
        from db.session import Database

        database = Database(settings.require_database_url())
        try:
            async with database.transaction() as session:
                hooks = await webhooks.rotate_secrets(session, box=box)
                creds = await connections.rotate_secrets(session, box=box)
        finally:
            await database.dispose()
        print(
            f"runledger rotate-secrets: {hooks} webhook secret(s) and {creds} connection credential(s) "
            "re-encrypted under the newest key"
        )
        return 0

    return asyncio.run(run())


def add_maintenance_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers ``reconcile`` and ``rotate-secrets``, in that order."""
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
    rotate_help = (
        "re-encrypt every stored secret under the newest key of RUNLEDGER_SECRET_KEYS (comma-separated, "
        "newest first); drop an old key only after this"
    )
    rotate = sub.add_parser("rotate-secrets", help=rotate_help, description=rotate_help)
    rotate.add_argument(
        "--new-key", action="store_true", help="only print a new key to prepend to RUNLEDGER_SECRET_KEYS"
    )
    rotate.set_defaults(func=cmd_rotate_secrets)
