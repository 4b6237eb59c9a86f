"""Connections (credentials of external services) for people: the list, never a secret."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import RenderableType
from rich.text import Text

from runledger.cli.tables.base import (
    Row,
    id_column,
    new_table,
    note,
    plain,
    when,
)


def connections_table(connections: Sequence[Row]) -> RenderableType:
    if not connections:
        return note("no connections (create one with `runledger connections create`)")
    table = new_table()
    id_column(table, "CONNECTION ID")
    table.add_column("PROVIDER", no_wrap=True)
    table.add_column("KIND", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("NAME", overflow="fold")
    table.add_column("CREATED", no_wrap=True)
    for c in connections:
        table.add_row(
            plain(c["connection_id"]),
            plain(c["provider"]),
            plain(c["kind"]),
            Text(c["status"], style="green" if c["status"] == "active" else "red"),
            plain(c["name"] or "-"),
            plain(when(c["created_at"])),
        )
    return table
