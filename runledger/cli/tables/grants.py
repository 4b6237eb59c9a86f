"""Execution grants for people: the list (with the schedules billing through each) and one grant; a
grant's status is revoked, expired, exhausted (spent its cap) or active, in that order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from rich.console import RenderableType
from rich.text import Text

from runledger.cli.tables.base import (
    ID_WIDTH,
    Row,
    credits,
    details,
    id_column,
    new_table,
    note,
    parse_time,
    plain,
    when,
)


def grant_status(grant: Row, now: datetime) -> Text:
    expires = parse_time(grant.get("expires_at"))
    max_credits = grant.get("max_credits")
    if grant.get("revoked_at"):
        return Text("revoked", style="red")
    if expires is not None and expires.tzinfo is not None and expires <= now:
        return Text("expired", style="red")
    if max_credits is not None and int(grant.get("spent_credits", 0)) >= int(max_credits):
        return Text("exhausted", style="yellow")
    return Text("active", style="green")


def grants_table(
    grants: Sequence[Row], now: datetime, used_by: Mapping[str, Sequence[str]] | None = None
) -> RenderableType:
    if not grants:
        return note("no grants")
    table = new_table()
    id_column(table, "GRANT ID")
    table.add_column("SCOPES")
    table.add_column("STATUS", no_wrap=True)
    table.add_column("SPENT / MAX CREDITS", justify="right", no_wrap=True)
    table.add_column("EXPIRES", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    if used_by is not None:
        table.add_column("USED BY SCHEDULE", no_wrap=True, min_width=ID_WIDTH)
    for g in grants:
        cells: list[RenderableType] = [
            plain(g["grant_id"]),
            plain("\n".join(g["scopes"])),
            grant_status(g, now),
            plain(
                f"{credits(g['spent_credits'])} / {credits(g['max_credits']) if g['max_credits'] is not None else 'unlimited'}"
            ),
            plain(when(g["expires_at"]) if g["expires_at"] else "never"),
            plain(when(g["created_at"])),
        ]
        if used_by is not None:
            cells.append(plain("\n".join(used_by.get(g["grant_id"], ()))))
        table.add_row(*cells)
    return table


def grant_view(grant: Row, now: datetime) -> RenderableType:
    max_credits = grant["max_credits"]
    return details(
        [
            ("grant", plain(grant["grant_id"])),
            ("scopes", plain(", ".join(grant["scopes"]))),
            ("status", grant_status(grant, now)),
            ("max credits", plain(credits(max_credits) if max_credits is not None else "unlimited")),
            ("spent credits", plain(credits(grant["spent_credits"]))),
            ("expires", plain(when(grant["expires_at"]) if grant["expires_at"] else "never")),
            ("created", plain(when(grant["created_at"]))),
        ]
    )
