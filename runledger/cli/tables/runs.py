"""Runs for people: the list and one run's detail with its charges (every model call billed, and the
total)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.text import Text

from runledger.cli.tables.base import (
    Row,
    compact_json,
    credits,
    credits_with_usd,
    details,
    duration,
    id_column,
    new_table,
    note,
    plain,
    status_text,
    when,
)


def runs_table(runs: Sequence[Row], title: str | None = None) -> RenderableType:
    if not runs:
        return note("no runs")
    table = new_table(title)
    id_column(table, "RUN ID")
    table.add_column("GRAPH", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("KIND", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    table.add_column("DURATION", justify="right", no_wrap=True)
    table.add_column("CALLS", justify="right", no_wrap=True)
    table.add_column("CREDITS", justify="right", no_wrap=True)
    for r in runs:
        table.add_row(
            plain(r["run_id"]),
            plain(r["graph_id"]),
            status_text(r["status"], r.get("pause_reason")),
            plain(r["run_kind"]),
            plain(when(r["created_at"])),
            plain(duration(r.get("started_at"), r.get("completed_at"))),
            plain(r.get("model_calls", 0)),
            plain(credits(r["cost_credits"])),
        )
    return table


def charges_table(receipts: Sequence[Row]) -> RenderableType:
    if not receipts:
        return note("no charges")
    table = new_table("charges")
    table.add_column("ATTEMPT", justify="right", no_wrap=True)
    table.add_column("MODEL", no_wrap=True)
    table.add_column("TOKENS IN", justify="right", no_wrap=True)
    table.add_column("TOKENS OUT", justify="right", no_wrap=True)
    table.add_column("COST USD", justify="right", no_wrap=True)
    table.add_column("MARKUP", justify="right", no_wrap=True)
    table.add_column("CREDITS", justify="right", no_wrap=True)
    table.add_column("AT", no_wrap=True)
    table.add_column("USAGE UNIT", no_wrap=True)
    for i, r in enumerate(receipts):
        table.add_row(
            plain(r["attempt"]),
            plain(r["model"]),
            plain(f"{r['tokens_in']:,}"),
            plain(f"{r['tokens_out']:,}"),
            plain(r["cost_usd"]),
            plain(r["markup"]),
            plain(credits(r["charged_credits"])),
            plain(when(r["created_at"])),
            plain(r["usage_unit_id"]),
            end_section=i == len(receipts) - 1,
        )
    total_usd = sum((Decimal(r["cost_usd"]) for r in receipts), Decimal(0))
    table.add_row(
        Text("total", style="bold"),
        plain(f"{len(receipts)} call(s)"),
        plain(f"{sum(int(r['tokens_in']) for r in receipts):,}"),
        plain(f"{sum(int(r['tokens_out']) for r in receipts):,}"),
        plain(f"{total_usd:f}"),
        plain(""),
        Text(credits(sum(int(r["charged_credits"]) for r in receipts)), style="bold"),
        plain(""),
        plain(""),
    )
    return table


def run_view(run: Row, receipts: Sequence[Row]) -> RenderableType:
    links = run.get("links") or {}
    rows: list[tuple[str, RenderableType | None]] = [
        ("run", plain(run["run_id"])),
        ("graph", plain(run["graph_id"])),
        ("status", status_text(run["status"], run.get("pause_reason"))),
        ("kind", plain(run["run_kind"])),
        (
            "trigger",
            plain(
                f"{run['trigger_source']}" + (f" ({run['trigger_ref']})" if run.get("trigger_ref") else "")
            ),
        ),
        ("requested by", plain(run["requested_by"])),
    ]
    if run.get("schedule_id"):
        rows.append(("schedule", plain(run["schedule_id"])))
        rows.append(("scheduled for", plain(when(run.get("scheduled_for")))))
    if run.get("replay_of"):
        rows.append(("replay of", plain(run["replay_of"])))
    rows += [
        ("created", plain(when(run["created_at"]))),
        ("started", plain(when(run.get("started_at")))),
        ("completed", plain(when(run.get("completed_at")))),
        ("duration", plain(duration(run.get("started_at"), run.get("completed_at")))),
        ("model calls", plain(run.get("model_calls", 0))),
        ("cost", plain(credits_with_usd(int(run["cost_credits"])))),
    ]
    if run.get("error_code") or run.get("error_message"):
        rows.append(
            ("error", Text(f"{run.get('error_code') or ''}: {run.get('error_message') or ''}", style="red"))
        )
    rows += [
        ("input", plain(compact_json(run["input"]))),
        ("output", JSON.from_data(run["output"]) if run.get("output") is not None else None),
        ("workflow", plain(run["workflow_id"])),
        ("trace", plain(run.get("trace_id"))),
        ("temporal ui", plain(links.get("temporal_ui"))),
    ]
    if links.get("langfuse"):
        rows.append(("langfuse", plain(links["langfuse"])))
    return Group(details(rows), Text(""), charges_table(receipts))
