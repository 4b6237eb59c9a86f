"""What every table module shares: the console, ``--json`` output, how values are written (times,
credits, statuses, JSON, missing values) and the table and detail-grid building blocks.

Contract: see :mod:`runledger.cli.tables`; :func:`show` (and :func:`say`, for one line of text) is how
every command prints an answer: the API's JSON as it came with ``--json``, else the rich view.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

PIPE_WIDTH = 200
NONE = "-"
ID_WIDTH = 36
CREDIT_USD = Decimal("1e-7")

STATUS_STYLES = {
    "pending": "yellow",
    "running": "cyan",
    "paused": "yellow",
    "success": "green",
    "error": "bold red",
    "cancelled": "magenta",
    "skipped": "dim",
}

Row = Mapping[str, Any]


def make_console() -> Console:
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=PIPE_WIDTH)
    return console


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# -- values ---------------------------------------------------------------------------------------


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def when(value: str | None, timezone: str | None = None) -> str:
    moment = parse_time(value)
    if moment is None:
        return value or NONE
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if timezone and timezone != "UTC":
        try:
            local = moment.astimezone(ZoneInfo(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            return text
        text += f"  ({local:%Y-%m-%d %H:%M} {timezone})"
    return text


def duration(start: str | None, end: str | None) -> str:
    started, ended = parse_time(start), parse_time(end)
    if started is None or ended is None:
        return NONE
    seconds = (ended - started).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def credits(amount: int | None) -> str:
    return NONE if amount is None else f"{amount:,}"


def credits_with_usd(amount: int) -> str:
    usd = (Decimal(amount) * CREDIT_USD).normalize()
    return f"{amount:,} credits (${usd:f})"


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def status_text(status: str, pause_reason: str | None = None) -> Text:
    label = f"{status} ({pause_reason})" if pause_reason else status
    return Text(label, style=STATUS_STYLES.get(status, ""))


def plain(value: Any) -> Text:
    if value is None or value == "":
        return Text(NONE, style="dim")
    return Text(str(value))


# -- building blocks ------------------------------------------------------------------------------


def new_table(title: str | None = None) -> Table:
    return Table(title=title, title_justify="left", header_style="bold", expand=False)


def id_column(table: Table, header: str) -> None:
    table.add_column(header, no_wrap=True, min_width=ID_WIDTH)


def details(rows: Iterable[tuple[str, RenderableType | None]]) -> Table:
    """A two-column label/value grid."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, value if value is not None else Text(NONE, style="dim"))
    return grid


def note(text: str) -> Text:
    return Text(text, style="dim")


def show(as_json: bool, data: object, view: Any) -> None:
    """``--json``: the API's JSON as it came; otherwise the rich view ``view()`` builds."""
    if as_json:
        emit_json(data)
    else:
        make_console().print(view())


def say(as_json: bool, data: object, text: str) -> None:
    """:func:`show` for an answer told in one line of text."""
    show(as_json, data, lambda: Text(text))
