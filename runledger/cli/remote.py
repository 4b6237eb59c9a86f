"""What every user command over the HTTP API shares: its options, its connection and its failures.

Contract:
- A user command is a handler ``(client, args) -> exit code or None (0)`` that calls the API through
  :class:`~runledger.api_client.ApiClient` and prints the answer (:mod:`runledger.cli.tables`).
  :meth:`ApiCommands.leaf` registers it with the options every such command takes: ``--api-url``,
  ``--api-key``, ``--timeout`` and ``--json``.
- :func:`remote` resolves the connection (:func:`runledger.api_client.resolve_connection`: API URL
  ``--api-url``, else ``RUNLEDGER_API_URL``, else ``http://127.0.0.1:{RUNLEDGER_API_PORT or 8000}``; API
  key ``--api-key``, else ``RUNLEDGER_API_KEY``, else the demo user's key that ``runledger up`` saves in
  ``<RUNLEDGER_DATA_DIR or .runledger>/demo.json``), then runs the handler. Unusable connection settings
  are a :class:`~runledger.cli.settings.ConfigError` (exit 2). An API error prints
  ``error: <code>: <message>`` on stderr (``unauthorized`` also says where the key came from) and exits
  1, as does an API that cannot be reached; Ctrl-C exits 130.
- The argument types several groups share: a JSON object, a ``JSON|@FILE`` payload, a non-negative
  integer.
- These commands import httpx and rich only (and ``webhooks send`` the pure ``contracts.webhooks``), and
  never the database, Temporal or LiteLLM.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from runledger.api_client import (
    DEFAULT_TIMEOUT_SECONDS,
    ApiClient,
    ApiError,
    ApiUnreachable,
    ClientConfigError,
    JsonObject,
    resolve_api_url,
    resolve_connection,
)
from runledger.cli.settings import ConfigError

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

#: A user command: it calls the API through the client and prints the answer; it may return its exit
#: code (None: 0).
Handler = Callable[[ApiClient, argparse.Namespace], int | None]


def remote(handler: Handler, *, authenticated: bool = True) -> Callable[[argparse.Namespace], int]:
    """Wrap a user command: resolve the connection, run it, turn API failures into exit code 1.
    ``authenticated`` False: only the API URL is resolved and no API key is sent (a webhook delivery)."""

    def run(args: argparse.Namespace) -> int:
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


def json_object(value: str) -> JsonObject:
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError('must be a JSON object, e.g. \'{"topic": "the sea"}\'')
    return parsed


def payload(value: str) -> bytes:
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


def non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return number


class ApiCommands:
    """Adds the groups of user commands (``runledger GROUP ACTION``) to the top-level parser."""

    def __init__(self, sub: Subcommands) -> None:
        self._sub = sub
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
        self._common = common

    def group(self, name: str, help_text: str) -> Subcommands:
        """A command group; its actions are added with :meth:`leaf`."""
        parser = self._sub.add_parser(name, help=help_text, description=help_text)
        return parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def leaf(
        self,
        actions: Subcommands,
        name: str,
        help_text: str,
        handler: Handler,
        *,
        authenticated: bool = True,
    ) -> argparse.ArgumentParser:
        """An action of a group, run by ``handler`` through :func:`remote`, with the connection options."""
        parser = actions.add_parser(name, help=help_text, description=help_text, parents=[self._common])
        parser.set_defaults(func=remote(handler, authenticated=authenticated))
        return parser
