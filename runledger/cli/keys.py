"""``runledger keys``: your API keys, through the API: ``list`` (never the keys themselves), ``create``
(the key shown once) and ``revoke`` (refused from the next request on)."""

from __future__ import annotations

import argparse

from runledger.api_client import ApiClient
from runledger.cli.remote import ApiCommands
from runledger.cli.tables.base import say, show
from runledger.cli.tables.keys import api_key_created, api_keys_table


def _keys_list(client: ApiClient, args: argparse.Namespace) -> None:
    answer = client.list_api_keys()
    show(args.as_json, answer, lambda: api_keys_table(answer["api_keys"]))


def _keys_create(client: ApiClient, args: argparse.Namespace) -> None:
    answer = client.create_api_key({} if args.name is None else {"name": args.name})
    show(args.as_json, answer, lambda: api_key_created(answer))


def _keys_revoke(client: ApiClient, args: argparse.Namespace) -> None:
    client.revoke_api_key(args.key_id)
    say(
        args.as_json,
        {"key_id": args.key_id, "revoked": True},
        f"revoked API key {args.key_id}; it is refused from the next request on",
    )


def add_commands(api: ApiCommands) -> None:
    """Registers the ``keys`` group."""
    keys = api.group("keys", "your API keys (create, list, revoke), through the API")
    api.leaf(keys, "list", "list your API keys (never the keys themselves)", _keys_list)
    api.leaf(keys, "create", "create an API key (shown once)", _keys_create).add_argument(
        "--name", default=None, help="a label to tell the key apart"
    )
    api.leaf(
        keys, "revoke", "revoke an API key (refused from the next request on)", _keys_revoke
    ).add_argument("key_id", metavar="KEY_ID")
