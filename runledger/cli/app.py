"""The ``runledger`` parser and ``main``: every command group registered in one place, and the exit
code of a command that refuses its configuration.

Contract: ``main(argv)`` parses ``argv`` (default ``sys.argv[1:]``), runs the command and raises
``SystemExit`` with its exit code; a :class:`~runledger.cli.settings.ConfigError` is printed as
``runledger COMMAND: message`` on stderr and exits 2. LiteLLM is pinned offline for this process and
its children before anything can import it. The commands, in ``--help`` order: the process roles
(:mod:`runledger.cli.roles`), the maintenance commands (:mod:`runledger.cli.maintenance`), then the
user commands over the HTTP API (:mod:`runledger.cli.remote`), one module per group.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from runledger.cli import connections, grants, keys, runs, schedules, webhooks
from runledger.cli.maintenance import add_maintenance_commands
from runledger.cli.remote import ApiCommands
from runledger.cli.roles import add_role_commands
from runledger.cli.settings import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runledger",
        description="Durable LangGraph runs on Temporal, every model call billed into a Postgres ledger.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_role_commands(sub)
    add_maintenance_commands(sub)
    api = ApiCommands(sub)
    for group in (schedules, grants, keys, webhooks, connections, runs):
        group.add_commands(api)
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
