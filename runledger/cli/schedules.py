"""``runledger schedules``: cron schedules of graph runs (Temporal Schedules), through the API: ``list``,
``show``, ``create`` (with its own grant unless ``--grant``), ``update``, ``pause``, ``resume``,
``trigger`` (one run now) and ``delete`` (its own grant revoked, its runs kept)."""

from __future__ import annotations

import argparse

from rich.console import Group
from rich.text import Text

from runledger.api_client import OVERLAP_POLICIES, ApiClient, JsonObject
from runledger.cli.remote import ApiCommands, json_object, non_negative_int
from runledger.cli.tables.base import say, show, when
from runledger.cli.tables.schedules import schedule_view, schedules_table


def _schedules_list(client: ApiClient, args: argparse.Namespace) -> None:
    answer = client.list_schedules()
    show(args.as_json, answer, lambda: schedules_table(answer["schedules"]))


def _schedules_show(client: ApiClient, args: argparse.Namespace) -> None:
    answer = client.get_schedule(args.schedule_id)
    show(args.as_json, answer, lambda: schedule_view(answer))


def _schedules_create(client: ApiClient, args: argparse.Namespace) -> None:
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
    if args.notify_url is not None:
        body["notify_url"] = args.notify_url
    answer = client.create_schedule(body)
    show(
        args.as_json,
        answer,
        lambda: Group(Text(f"created schedule {answer['schedule_id']}", style="bold"), schedule_view(answer)),
    )


def _schedules_update(client: ApiClient, args: argparse.Namespace) -> None:
    changes: JsonObject = {}
    for field in ("input", "cron", "timezone", "overlap", "catchup_window_seconds"):
        if getattr(args, field) is not None:
            changes[field] = getattr(args, field)
    if args.notify_url is not None:
        changes["notify_url"] = args.notify_url
    if args.no_notify_url:
        changes["notify_url"] = None
    answer = client.patch_schedule(args.schedule_id, changes)
    show(
        args.as_json,
        answer,
        lambda: Group(Text(f"updated schedule {answer['schedule_id']}", style="bold"), schedule_view(answer)),
    )


def _set_enabled(client: ApiClient, args: argparse.Namespace, *, enabled: bool) -> None:
    answer = client.patch_schedule(args.schedule_id, {"enabled": enabled})
    if enabled:
        upcoming = when(answer.get("next_run_at"), answer.get("timezone"))
        text = f"resumed schedule {answer['schedule_id']}; next run {upcoming}"
    else:
        text = f"paused schedule {answer['schedule_id']}; no slot runs until `runledger schedules resume`"
    say(args.as_json, answer, text)


def _schedules_pause(client: ApiClient, args: argparse.Namespace) -> None:
    _set_enabled(client, args, enabled=False)


def _schedules_resume(client: ApiClient, args: argparse.Namespace) -> None:
    _set_enabled(client, args, enabled=True)


def _schedules_trigger(client: ApiClient, args: argparse.Namespace) -> None:
    answer = client.trigger_schedule(args.schedule_id)
    say(
        args.as_json,
        answer,
        f"triggered schedule {answer['schedule_id']}; "
        f"see its run with `runledger runs list --schedule {answer['schedule_id']}`",
    )


def _schedules_delete(client: ApiClient, args: argparse.Namespace) -> None:
    client.delete_schedule(args.schedule_id)
    say(
        args.as_json,
        {"schedule_id": args.schedule_id, "deleted": True},
        f"deleted schedule {args.schedule_id} (its Temporal schedule is gone, its run history is kept)",
    )


def add_commands(api: ApiCommands) -> None:
    """Registers the ``schedules`` group."""
    overlap_help = (
        f"what to do when a slot is due while the last run still runs: {', '.join(OVERLAP_POLICIES)}"
    )

    schedules = api.group("schedules", "cron schedules of graph runs (Temporal Schedules), through the API")
    api.leaf(schedules, "list", "list your schedules", _schedules_list)
    show = api.leaf(schedules, "show", "a schedule with its next run times and recent runs", _schedules_show)
    show.add_argument("schedule_id", metavar="SCHEDULE_ID")
    create = api.leaf(
        schedules, "create", "create a schedule (and its grant, unless --grant)", _schedules_create
    )
    create.add_argument("--graph", required=True, help="graph id, e.g. langgraph:poet")
    create.add_argument("--cron", required=True, help='five-field cron, e.g. "0 9 * * *"')
    create.add_argument("--timezone", required=True, help="IANA time zone of the cron, e.g. Europe/Paris")
    create.add_argument(
        "--input",
        required=True,
        type=json_object,
        help='graph input as a JSON object, e.g. \'{"topic": "x"}\'',
    )
    create.add_argument(
        "--overlap", choices=OVERLAP_POLICIES, default=None, help=overlap_help + " (default skip)"
    )
    create.add_argument(
        "--catchup-window-seconds",
        type=non_negative_int,
        default=None,
        help="how late a missed slot may still run (default 3600)",
    )
    create.add_argument(
        "--grant", default=None, metavar="GRANT_ID", help="bill through this grant instead of a new one"
    )
    create.add_argument("--disabled", action="store_true", help="create it paused")
    create.add_argument(
        "--notify-url", default=None, metavar="URL", help="announce each of its runs' endings to this URL"
    )
    update = api.leaf(
        schedules, "update", "change a schedule's input, cron, time zone or policies", _schedules_update
    )
    update.add_argument("schedule_id", metavar="SCHEDULE_ID")
    update.add_argument("--input", type=json_object, default=None, help="new graph input (JSON object)")
    update.add_argument("--cron", default=None, help="new five-field cron")
    update.add_argument("--timezone", default=None, help="new IANA time zone")
    update.add_argument("--overlap", choices=OVERLAP_POLICIES, default=None, help=overlap_help)
    update.add_argument("--catchup-window-seconds", type=non_negative_int, default=None)
    notify = update.add_mutually_exclusive_group()
    notify.add_argument("--notify-url", default=None, metavar="URL", help="announce its runs' endings here")
    notify.add_argument("--no-notify-url", action="store_true", help="stop announcing its runs' endings")
    for name, help_text, handler in (
        ("pause", "pause a schedule (PATCH enabled=false)", _schedules_pause),
        ("resume", "resume a paused schedule (PATCH enabled=true)", _schedules_resume),
        ("trigger", "run a schedule now, outside its cron", _schedules_trigger),
        ("delete", "delete a schedule; its own grant is revoked, its runs are kept", _schedules_delete),
    ):
        api.leaf(schedules, name, help_text, handler).add_argument("schedule_id", metavar="SCHEDULE_ID")
