"""``runledger connections``: credentials tools use for external services (stored encrypted), through
the API: ``list`` (never a secret), ``create`` from a JSON body (``--data JSON|@FILE``, so a token
need not be an argument) and ``delete`` (revoke)."""

from __future__ import annotations

import argparse
import json

from runledger.api_client import ApiClient
from runledger.cli.remote import ApiCommands, payload
from runledger.cli.settings import ConfigError
from runledger.cli.tables.base import say, show
from runledger.cli.tables.connections import connections_table


def _connections_list(client: ApiClient, args: argparse.Namespace) -> None:
    answer = client.list_connections()
    show(args.as_json, answer, lambda: connections_table(answer["connections"]))


def _connections_create(client: ApiClient, args: argparse.Namespace) -> None:
    """The body is a file (``@FILE``, ``@-`` stdin) or JSON text, so a token need not be an argument."""
    try:
        body = json.loads(args.data)
    except ValueError as exc:
        raise ConfigError(f"--data is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise ConfigError("--data must be a JSON object")
    answer = client.create_connection(body)
    say(
        args.as_json,
        answer,
        f"created {answer['kind']} connection {answer['connection_id']} for {answer['provider']} "
        "(its secrets are stored encrypted and never shown)",
    )


def _connections_delete(client: ApiClient, args: argparse.Namespace) -> None:
    client.delete_connection(args.connection_id)
    say(
        args.as_json,
        {"connection_id": args.connection_id, "revoked": True},
        f"revoked connection {args.connection_id}",
    )


def add_commands(api: ApiCommands) -> None:
    """Registers the ``connections`` group."""
    conns = api.group(
        "connections", "credentials tools use for external services (stored encrypted), through the API"
    )
    api.leaf(conns, "list", "list your connections (never a secret)", _connections_list)
    conn_create = api.leaf(
        conns,
        "create",
        "create a connection from a JSON body, e.g. "
        '{"provider": "github", "kind": "api_key", "api_key": "..."}',
        _connections_create,
    )
    conn_create.add_argument(
        "--data",
        required=True,
        type=lambda v: payload(v).decode(),
        metavar="JSON|@FILE",
        help="the connection as JSON, or @FILE (@- stdin) so the token stays out of your shell history",
    )
    api.leaf(conns, "delete", "revoke a connection", _connections_delete).add_argument(
        "connection_id", metavar="CONNECTION_ID"
    )
