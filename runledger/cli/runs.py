"""``runledger runs``: graph runs and their charges, through the API: ``list``, ``show`` (with its charges)
and ``follow``: the run's events live (status, streamed text, running cost), resumed with
``Last-Event-ID`` when the connection drops; exit 0 when the run ends ``success``, else 1. The commands
of a run's durable steps are in :mod:`runledger.cli.run_steps`."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Group
from rich.live import Live

from runledger.api_client import ApiClient
from runledger.cli.remote import ApiCommands
from runledger.cli.run_steps import add_step_commands
from runledger.cli.tables.base import make_console, note, show
from runledger.cli.tables.follow import FollowState, follow_summary, follow_view
from runledger.cli.tables.runs import run_view, runs_table
from runledger.contracts.runs import RunKind, RunStatus


def _runs_list(client: ApiClient, args: argparse.Namespace) -> None:
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

    show(args.as_json, answer, view)


def _runs_show(client: ApiClient, args: argparse.Namespace) -> None:
    run = client.get_run(args.run_id)
    receipts = client.run_charges(args.run_id)["receipts"]
    show(args.as_json, {"run": run, "charges": receipts}, lambda: run_view(run, receipts))


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


def add_commands(api: ApiCommands) -> None:
    """Registers the ``runs`` group, with the step commands of :mod:`runledger.cli.run_steps`."""
    runs = api.group("runs", "graph runs and their charges, through the API")
    runs_list = api.leaf(runs, "list", "list your runs, newest first", _runs_list)
    runs_list.add_argument("--status", choices=[s.value for s in RunStatus], default=None)
    runs_list.add_argument("--graph", default=None, metavar="GRAPH_ID")
    runs_list.add_argument("--schedule", default=None, metavar="SCHEDULE_ID")
    runs_list.add_argument("--kind", choices=[k.value for k in RunKind], default=None)
    runs_list.add_argument("--limit", type=int, default=20, help="1-100 (default 20)")
    runs_list.add_argument("--cursor", default=None, help="next page, as printed under the table")
    api.leaf(runs, "show", "a run's detail with its charges", _runs_show).add_argument(
        "run_id", metavar="RUN_ID"
    )
    follow = api.leaf(
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

    add_step_commands(api, runs)
