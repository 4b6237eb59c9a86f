"""Schedules for people: the list (``runledger schedules list``) and one schedule's detail, with its
next run times in UTC and in its own time zone and its recent runs."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.text import Text

from runledger.cli.tables.base import (
    Row,
    compact_json,
    details,
    id_column,
    new_table,
    note,
    plain,
    when,
)
from runledger.cli.tables.runs import runs_table


def schedule_state(schedule: Row) -> Text:
    # The detail carries Temporal's own state; a list row only the stored ``enabled``.
    paused = bool(schedule["paused"]) if "paused" in schedule else not schedule.get("enabled", True)
    return Text("paused", style="yellow") if paused else Text("active", style="green")


def schedules_table(schedules: Sequence[Row]) -> RenderableType:
    if not schedules:
        return note("no schedules (create one with `runledger schedules create`)")
    table = new_table()
    id_column(table, "SCHEDULE ID")
    table.add_column("GRAPH", no_wrap=True)
    table.add_column("CRON", no_wrap=True)
    table.add_column("TIMEZONE", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("OVERLAP", no_wrap=True)
    table.add_column("INPUT", overflow="ellipsis", max_width=40, no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    for s in schedules:
        table.add_row(
            plain(s["schedule_id"]),
            plain(s["graph_id"]),
            plain(s["cron"]),
            plain(s["timezone"]),
            schedule_state(s),
            plain(s["overlap"]),
            plain(compact_json(s["input"])),
            plain(when(s["created_at"])),
        )
    return table


def schedule_view(schedule: Row) -> RenderableType:
    tz = schedule.get("timezone")
    rows: list[tuple[str, RenderableType | None]] = [
        ("schedule", plain(schedule["schedule_id"])),
        ("graph", plain(schedule["graph_id"])),
        ("cron", plain(f"{schedule['cron']}  ({tz})")),
        ("state", schedule_state(schedule)),
        ("overlap", plain(schedule["overlap"])),
        ("catch-up window", plain(f"{schedule['catchup_window_seconds']}s")),
        ("input", plain(compact_json(schedule["input"]))),
        ("grant", plain(schedule["grant_id"])),
        ("temporal schedule", plain(schedule["temporal_schedule_id"])),
        ("created", plain(when(schedule["created_at"]))),
        ("updated", plain(when(schedule["updated_at"]))),
    ]
    next_times = schedule.get("next_run_times")
    if next_times is None:
        rows.append(("next run", plain(when(schedule.get("next_run_at"), tz))))
    else:
        rows.append(("next runs", plain("\n".join(when(t, tz) for t in next_times) if next_times else None)))
    if schedule.get("temporal_ui"):
        rows.append(("temporal ui", plain(schedule["temporal_ui"])))
    parts: list[RenderableType] = [details(rows)]
    recent = schedule.get("recent_runs")
    if recent is not None:
        parts.append(Text(""))
        parts.append(runs_table(recent, title="recent runs") if recent else note("no runs yet"))
    return Group(*parts)
