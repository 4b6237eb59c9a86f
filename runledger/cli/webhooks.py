"""``runledger webhooks``: webhook triggers (signed deliveries that start graph runs), through the API:
``list``, ``create`` (its signing secret shown once), ``deliveries`` (the audit log), ``delete``, and
``send``: a delivery as a sender makes it, to try a trigger: the body signed with the trigger's
secret (``--secret``, else ``RUNLEDGER_WEBHOOK_SECRET``; none: exit 2) per
:mod:`runledger.contracts.webhooks`, posted without the API key (only the API URL is resolved)."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

from rich.console import Group
from rich.text import Text

from runledger.api_client import ApiClient, JsonObject
from runledger.cli.remote import ApiCommands, json_object, payload
from runledger.cli.settings import ConfigError
from runledger.cli.tables.base import note, say, show
from runledger.cli.tables.webhooks import (
    webhook_deliveries_table,
    webhook_runs_table,
    webhook_secret,
    webhook_trigger_view,
    webhook_triggers_table,
)


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


def _webhooks_list(client: ApiClient, args: argparse.Namespace) -> None:
    answer = client.list_webhook_triggers()
    show(args.as_json, answer, lambda: webhook_triggers_table(answer["webhook_triggers"], client.api_url))


def _webhooks_create(client: ApiClient, args: argparse.Namespace) -> None:
    body: JsonObject = {"source": args.source, "graph_id": args.graph}
    if args.input is not None:
        body["input"] = args.input
    if args.input_mapping is not None:
        body["input_mapping"] = args.input_mapping
    if args.grant is not None:
        body["grant_id"] = args.grant
    body["kind"] = args.kind
    if args.secret is not None:
        body["secret"] = args.secret
    if args.events is not None:
        body["events"] = args.events
    answer = client.create_webhook_trigger(body)
    show(
        args.as_json,
        answer,
        lambda: Group(
            Text(f"created webhook trigger {answer['trigger_id']}", style="bold"),
            webhook_trigger_view(answer, client.api_url),
            Text(""),
            webhook_secret(answer["secret"]),
            note(
                f"try it: runledger webhooks send {answer['source']} --kind {answer['kind']} "
                "--secret SECRET --data 'JSON payload'"
            ),
        ),
    )


def _webhooks_deliveries(client: ApiClient, args: argparse.Namespace) -> None:
    params: dict[str, str | int] = {"limit": args.limit}
    for name, value in (
        ("source", args.source),
        ("trigger_id", args.trigger),
        ("outcome", args.outcome),
        ("cursor", args.cursor),
    ):
        if value is not None:
            params[name] = value
    answer = client.list_webhook_deliveries(params)

    def view() -> object:
        table = webhook_deliveries_table(answer["webhook_deliveries"])
        cursor = answer.get("next_cursor")
        return Group(table, note(f"more: --cursor {cursor}")) if cursor else table

    show(args.as_json, answer, view)


def _webhooks_delete(client: ApiClient, args: argparse.Namespace) -> None:
    client.delete_webhook_trigger(args.trigger_id)
    say(
        args.as_json,
        {"trigger_id": args.trigger_id, "deleted": True},
        f"deleted webhook trigger {args.trigger_id}; its deliveries start no more runs "
        "(a grant it made for itself is revoked, its runs are kept)",
    )


def _webhooks_send(client: ApiClient, args: argparse.Namespace) -> None:
    import uuid

    from runledger.contracts.webhooks import sign_headers

    secret = args.secret or os.environ.get("RUNLEDGER_WEBHOOK_SECRET")
    if not secret:
        raise ConfigError(
            "no webhook secret: pass --secret or set RUNLEDGER_WEBHOOK_SECRET "
            "(`runledger webhooks create` prints a trigger's secret once)"
        )
    delivery_id = args.delivery_id or f"cli-{uuid.uuid4()}"
    try:
        headers = sign_headers(
            args.kind, secret, args.data, delivery_key=delivery_id, event=args.event, now=time.time()
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"cannot sign with this secret as a {args.kind} sender: {exc}") from exc
    headers["Content-Type"] = "application/json"
    answer = client.deliver_webhook(args.source, args.data, headers)

    def view() -> object:
        runs = answer["runs"]
        started = sum(1 for r in runs if r["created"])
        if started:
            head = f"delivery {answer['delivery_id']}: started {started} run(s)"
        elif not runs:
            head = f"delivery {answer['delivery_id']}: event {answer.get('event')!r} is filtered: no run"
        else:
            head = f"delivery {answer['delivery_id']} was received before: no new run; the runs it started"
        return Group(
            Text(head, style="bold"),
            webhook_runs_table(runs),
            note("follow a run with `runledger runs follow RUN_ID` (the trigger owner's API key)"),
        )

    show(args.as_json, answer, view)


def add_commands(api: ApiCommands) -> None:
    """Registers the ``webhooks`` group."""
    webhooks = api.group(
        "webhooks", "webhook triggers (signed deliveries that start graph runs), through the API"
    )
    api.leaf(webhooks, "list", "list your webhook triggers", _webhooks_list)
    hook_create = api.leaf(
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
        type=json_object,
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
    hook_create.add_argument(
        "--kind",
        choices=["standard", "github", "stripe"],
        default="standard",
        help="the sender's signing scheme (default standard: Standard Webhooks)",
    )
    hook_create.add_argument(
        "--secret",
        default=None,
        help="the sender's own secret (Stripe's whsec_..., the one typed into GitHub); default: generated",
    )
    hook_create.add_argument(
        "--event",
        dest="events",
        action="append",
        default=None,
        metavar="NAME",
        help="start runs only for this event (GitHub issues or issues.opened, Stripe invoice.paid); "
        "repeat for several; others are recorded filtered",
    )
    deliveries = api.leaf(
        webhooks,
        "deliveries",
        "the delivery audit log of your sources: every delivery, accepted or refused, newest first",
        _webhooks_deliveries,
    )
    deliveries.add_argument("--source", default=None)
    deliveries.add_argument("--trigger", default=None, metavar="TRIGGER_ID")
    deliveries.add_argument(
        "--outcome", default=None, help="accepted, duplicate, filtered, invalid_signature, ..."
    )
    deliveries.add_argument("--limit", type=int, default=20, help="1-100 (default 20)")
    deliveries.add_argument("--cursor", default=None, help="next page, as printed under the table")
    api.leaf(
        webhooks,
        "delete",
        "delete a webhook trigger; a grant it made for itself is revoked, its runs are kept",
        _webhooks_delete,
    ).add_argument("trigger_id", metavar="TRIGGER_ID")
    send = api.leaf(
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
        type=payload,
        metavar="JSON|@FILE",
        help="the payload, sent byte for byte: JSON text, or @FILE to read it from a file (@- stdin)",
    )
    send.add_argument(
        "--delivery-id",
        type=_delivery_id,
        default=None,
        metavar="ID",
        help="the delivery's id; sending the same id again is a re-delivery, which starts no new run "
        "(default: cli-<uuid4>; a Stripe event's id is the payload's own \"id\")",
    )
    send.add_argument(
        "--kind",
        choices=["standard", "github", "stripe"],
        default="standard",
        help="sign as this kind of sender, like the trigger's kind (default standard: Standard Webhooks)",
    )
    send.add_argument("--event", default=None, help="GitHub only: the X-GitHub-Event header (default push)")
