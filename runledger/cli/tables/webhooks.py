"""Webhook triggers for people: the list, one trigger with its full URL, its signing secret (shown
once), the delivery audit log, and the runs one delivery started."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.console import Group, RenderableType
from rich.text import Text

from runledger.cli.tables.base import (
    ID_WIDTH,
    Row,
    compact_json,
    details,
    id_column,
    new_table,
    note,
    plain,
    status_text,
    when,
)


def input_mapping_text(mapping: Mapping[str, str]) -> str:
    """``field=/json/pointer``, one per line, as ``runledger webhooks create --map`` takes them."""
    return "\n".join(f"{field}={pointer}" for field, pointer in mapping.items())


def webhook_url(trigger: Row, api_url: str) -> str:
    """Where a sender posts: the API answers the path, the CLI knows the API's address."""
    url = str(trigger["url"])
    return api_url.rstrip("/") + url if url.startswith("/") else url


def webhook_triggers_table(triggers: Sequence[Row], api_url: str) -> RenderableType:
    """The URL column is the path the API answers (full URLs would push two ids out of 200 columns);
    the note under the table gives the API's address."""
    if not triggers:
        return note("no webhook triggers (create one with `runledger webhooks create`)")
    table = new_table()
    id_column(table, "TRIGGER ID")
    table.add_column("SOURCE", no_wrap=True)
    table.add_column("GRAPH", no_wrap=True)
    table.add_column("INPUT MAPPING", no_wrap=True)
    table.add_column("GRANT", no_wrap=True, min_width=ID_WIDTH)
    table.add_column("URL", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    for t in triggers:
        table.add_row(
            plain(t["trigger_id"]),
            plain(t["source"]),
            plain(t["graph_id"]),
            plain(input_mapping_text(t["input_mapping"])),
            plain(t["grant_id"]),
            plain(t["url"]),
            plain(when(t["created_at"])),
        )
    return Group(
        table, note(f"URLs are on the API at {api_url.rstrip('/')}; senders sign deliveries with the secret")
    )


def webhook_trigger_view(trigger: Row, api_url: str) -> RenderableType:
    return details(
        [
            ("trigger", plain(trigger["trigger_id"])),
            ("source", plain(trigger["source"])),
            ("kind", plain(trigger["kind"])),
            ("events", plain(", ".join(trigger["events"]) if trigger.get("events") else "every event")),
            ("graph", plain(trigger["graph_id"])),
            ("input", plain(compact_json(trigger["input"]))),
            ("input mapping", plain(input_mapping_text(trigger["input_mapping"]))),
            ("grant", plain(trigger["grant_id"])),
            ("url", plain(webhook_url(trigger, api_url))),
            ("created", plain(when(trigger["created_at"]))),
        ]
    )


def webhook_secret(secret: str) -> RenderableType:
    """The signing secret, marked as what it is: shown this once, never again."""
    return Group(
        Text.assemble(("secret  ", "bold"), (secret, "bold yellow")),
        Text(
            "shown once: store it now, the API never shows it again (senders sign deliveries with it)",
            style="yellow",
        ),
    )


def webhook_deliveries_table(deliveries: Sequence[Row]) -> RenderableType:
    """The trigger audit log: what each delivery was answered, and the runs it started."""
    if not deliveries:
        return note("no deliveries")
    table = new_table()
    table.add_column("RECEIVED", no_wrap=True)
    table.add_column("DELIVERY", overflow="fold")
    table.add_column("EVENT", overflow="fold")
    table.add_column("OUTCOME", no_wrap=True)
    table.add_column("HTTP", no_wrap=True)
    id_column(table, "TRIGGER ID")
    id_column(table, "RUN IDS")
    for d in deliveries:
        good = d["outcome"] in ("accepted", "duplicate", "filtered")
        table.add_row(
            plain(when(d["received_at"])),
            plain(d["delivery_id"] or "-"),
            plain(d["event"] or "-"),
            Text(d["outcome"], style="green" if good else "red"),
            plain(str(d["http_status"])),
            plain(d["trigger_id"] or "-"),
            plain("\n".join(d["run_ids"]) or "-"),
        )
    return table


def webhook_runs_table(runs: Sequence[Row]) -> RenderableType:
    """The runs of one delivery: those it started, or those an earlier delivery with its id started."""
    if not runs:
        return note("no runs")
    table = new_table()
    id_column(table, "RUN ID")
    id_column(table, "TRIGGER ID")
    table.add_column("STATUS", no_wrap=True)
    table.add_column("NEW", no_wrap=True)
    for r in runs:
        table.add_row(
            plain(r["run_id"]),
            plain(r["trigger_id"]),
            status_text(r["status"]),
            Text("yes", style="green") if r["created"] else Text("no (re-delivery)", style="yellow"),
        )
    return table
