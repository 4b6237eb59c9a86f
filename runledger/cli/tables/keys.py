"""API keys for people: the list (a key's prefix, never the key) and a new key, shown that once."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.text import Text

from runledger.cli.tables.base import (
    Row,
    id_column,
    new_table,
    note,
    plain,
    when,
)


def api_keys_table(keys: Sequence[Row]) -> RenderableType:
    if not keys:
        return note("no API keys")
    table = new_table()
    id_column(table, "KEY ID")
    table.add_column("NAME")
    table.add_column("PREFIX", no_wrap=True)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    for k in keys:
        revoked = k.get("revoked_at")
        table.add_row(
            plain(k["key_id"]),
            plain(k.get("name") or ""),
            plain(f"{k['key_prefix']}…"),
            Text(f"revoked {when(revoked)}", style="red") if revoked else Text("active", style="green"),
            plain(when(k["created_at"])),
        )
    return table


def api_key_created(key: Row) -> RenderableType:
    return Group(
        Text(f"created API key {key['key_id']}", style="bold"),
        Text(key["api_key"]),
        Text("This is the only time the key is shown: store it now.", style="yellow"),
    )
