"""Where the process commands (``migrate``, ``worker``, ``api``, ``up``, ``reconcile``, ``rotate-secrets``)
get their configuration, and how a bad one fails.

Contract:
- :class:`ConfigError` is a setting or an argument that is missing or invalid; ``main``
  (:mod:`runledger.cli.app`) prints it as ``runledger COMMAND: message`` on stderr and exits 2, with no
  traceback. The API commands raise it too, for input they refuse before calling the API.
- :func:`load_settings` reads :class:`runledger.config.Settings` from the environment; :func:`require`
  names every required variable that is unset, in one message.
- :func:`configure_logging`: one JSON object per line on stderr (:mod:`runledger.logs`).
- :func:`with_graphs`: ``--graphs PATH`` overrides ``RUNLEDGER_GRAPHS_CONFIG``.

The settings module, pydantic and the logging setup are imported inside the functions, so ``--help``
stays instant.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runledger.config import Settings


class ConfigError(Exception):
    """A required setting is missing or invalid."""


def load_settings() -> Settings:
    from pydantic import ValidationError

    from runledger.config import Settings

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from exc


def require(settings: Settings, *names: str) -> None:
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


def configure_logging(settings: Settings, *, temporal: bool = False) -> None:
    """Structured logs on stderr (:mod:`runledger.logs`): JSON lines unless RUNLEDGER_LOG_JSON=false;
    ``temporal``: Temporal's core logs too (before the process's first Temporal client)."""
    from runledger.logs import configure_logging as configure

    try:
        configure(settings.log_level, json=settings.log_json)
    except ValueError as exc:
        raise ConfigError(f"RUNLEDGER_LOG_LEVEL: {exc}") from exc
    if temporal:
        from runledger.log_context import forward_temporal_core_logs

        forward_temporal_core_logs()


def with_graphs(settings: Settings, args: argparse.Namespace) -> Settings:
    """``--graphs PATH`` overrides RUNLEDGER_GRAPHS_CONFIG."""
    if args.graphs is None:
        return settings
    from pathlib import Path

    return settings.model_copy(update={"graphs_config": Path(args.graphs)})
