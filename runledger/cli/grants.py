"""``runledger grants``: execution grants (who may run which graphs on your credits), through the API:
``list`` (with the schedules that bill through each), ``create`` and ``revoke``."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from rich.console import Group
from rich.text import Text

from runledger.api_client import ApiClient, JsonObject
from runledger.cli.remote import ApiCommands, non_negative_int
from runledger.cli.tables.base import emit_json, say, show
from runledger.cli.tables.grants import grant_view, grants_table


def _now() -> datetime:
    return datetime.now(UTC)


def _grants_list(client: ApiClient, args: argparse.Namespace) -> None:
    answer = client.list_grants()
    if args.as_json:
        emit_json(answer)
        return
    # Which schedule bills through which grant: revoking a schedule's grant stops its runs.
    used_by: dict[str, list[str]] = {}
    for schedule in client.list_schedules()["schedules"]:
        used_by.setdefault(schedule["grant_id"], []).append(schedule["schedule_id"])
    now = _now()
    show(args.as_json, answer, lambda: grants_table(answer["grants"], now, used_by))


def _grants_create(client: ApiClient, args: argparse.Namespace) -> None:
    body: JsonObject = {"scopes": args.scopes}
    if args.max_credits is not None:
        body["max_credits"] = args.max_credits
    if args.expires_at is not None:
        body["expires_at"] = args.expires_at
    answer = client.create_grant(body)
    now = _now()
    show(
        args.as_json,
        answer,
        lambda: Group(Text(f"created grant {answer['grant_id']}", style="bold"), grant_view(answer, now)),
    )


def _grants_revoke(client: ApiClient, args: argparse.Namespace) -> None:
    client.revoke_grant(args.grant_id)
    say(
        args.as_json,
        {"grant_id": args.grant_id, "revoked": True},
        f"revoked grant {args.grant_id}; runs that rely on it are refused from now on",
    )


def add_commands(api: ApiCommands) -> None:
    """Registers the ``grants`` group."""
    grants = api.group(
        "grants", "execution grants (who may run which graphs on your credits), through the API"
    )
    api.leaf(grants, "list", "list your grants", _grants_list)
    grant_create = api.leaf(grants, "create", "create a grant", _grants_create)
    grant_create.add_argument(
        "--scope",
        dest="scopes",
        action="append",
        required=True,
        help="graph:execute:{graph_id} or graph:execute:* (repeat for several)",
    )
    grant_create.add_argument(
        "--max-credits", type=non_negative_int, default=None, help="spending cap in credits"
    )
    grant_create.add_argument(
        "--expires-at", default=None, help="ISO-8601 time with a zone, e.g. 2030-01-01T00:00:00Z"
    )
    api.leaf(
        grants, "revoke", "revoke a grant (runs relying on it are refused)", _grants_revoke
    ).add_argument("grant_id", metavar="GRANT_ID")
