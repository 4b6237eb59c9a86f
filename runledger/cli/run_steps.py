"""``runledger runs`` commands of a run's durable steps, through the API: ``steps`` (its checkpoints
with the cost so far), ``resume`` (a run paused by ``interrupt()``), ``approve`` / ``deny`` (a tool
waiting for approval) and ``replay`` (over, or from a checkpoint; ``--dry-run`` prints the estimate)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runledger.api_client import ApiClient
from runledger.cli.remote import ApiCommands, Handler
from runledger.cli.tables.base import credits, details, note, plain, show, status_text

if TYPE_CHECKING:
    from runledger.cli.remote import Subcommands


def _json_value(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc.msg}") from None


def _steps(client: ApiClient, args: argparse.Namespace) -> None:
    from rich.table import Table

    answer = client.run_checkpoints(args.run_id)

    def view() -> object:
        table = Table(header_style="bold")
        for column in ("step", "node", "checkpoint", "cost so far"):
            table.add_column(column)
        for step in answer["checkpoints"]:
            table.add_row(
                str(step["step"]), step["node"], step["checkpoint_id"], credits(step["cost_credits_so_far"])
            )
        return table

    show(args.as_json, answer, view)


def _paused_view(run: dict[str, Any], what: str) -> object:
    return details(
        [
            ("run", plain(run["run_id"])),
            ("was", status_text(run["status"], run.get("pause_reason"))),
            ("sent", note(what)),
        ]
    )


def _resume(client: ApiClient, args: argparse.Namespace) -> None:
    run = client.resume_run(args.run_id, args.value)
    show(args.as_json, run, lambda: _paused_view(run, f"resume value {json.dumps(args.value)}"))


def _decide(approved: bool) -> Handler:
    def decide(client: ApiClient, args: argparse.Namespace) -> None:
        value: dict[str, Any] = {"approved": approved}
        if args.reason:
            value["reason"] = args.reason
        run = client.resume_run(args.run_id, value)
        show(args.as_json, run, lambda: _paused_view(run, "approved" if approved else "denied"))

    return decide


def _replay(client: ApiClient, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"dry_run": args.dry_run}
    if args.from_checkpoint:
        body["from_checkpoint_id"] = args.from_checkpoint
    answer = client.replay_run(args.run_id, body)
    if args.dry_run:
        view: Callable[[], object] = lambda: details(  # noqa: E731
            [
                ("estimated", plain(credits(answer["estimated_credits"]))),
                ("reused calls", plain(str(answer["reused_calls"]))),
                ("started", note("nothing (dry run)")),
            ]
        )
    else:
        view = lambda: details(  # noqa: E731
            [
                ("replay", plain(answer["run_id"])),
                ("follow", note(f"runledger runs follow {answer['run_id']}")),
            ]
        )
    show(args.as_json, answer, view)


def add_step_commands(api: ApiCommands, runs: Subcommands) -> None:
    """Registers the commands on the ``runs`` group."""
    api.leaf(
        runs, "steps", "a run's steps: the checkpoint after each, with the cost so far", _steps
    ).add_argument("run_id", metavar="RUN_ID")
    resume = api.leaf(runs, "resume", "resume a run paused by interrupt() (awaiting_input)", _resume)
    resume.add_argument("run_id", metavar="RUN_ID")
    resume.add_argument(
        "--value", required=True, type=_json_value, help="what interrupt() returns, as JSON (e.g. '\"yes\"')"
    )
    for name, approved in (("approve", True), ("deny", False)):
        parser = api.leaf(
            runs, name, f"{name} the tool call a run waits on (awaiting_approval)", _decide(approved)
        )
        parser.add_argument("run_id", metavar="RUN_ID")
        parser.add_argument("--reason", default=None, help="told to the model (and kept in the run's events)")
    replay = api.leaf(
        runs,
        "replay",
        "replay a run as a new one: over from its input, or --from one of its checkpoints (the steps "
        "before it are not run or paid again)",
        _replay,
    )
    replay.add_argument("run_id", metavar="RUN_ID")
    replay.add_argument("--from", dest="from_checkpoint", default=None, metavar="CHECKPOINT_ID")
    replay.add_argument("--dry-run", action="store_true", help="print the estimate; start nothing")
