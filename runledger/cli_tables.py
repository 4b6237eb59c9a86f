"""How the user-facing CLI commands show API answers: rich tables for people, raw JSON for scripts.

Contract:
- Renderers take the API's JSON shapes (SPEC §4) as plain dicts and return rich renderables; they
  never call the API. Every value that comes from the API is rendered as plain text, never as markup.
- Times are shown in UTC (and, for a schedule's next runs, also in the schedule's time zone); money
  in integer credits (1 credit = 1e-7 USD) with the USD equivalent where it helps.
- ``emit_json`` writes exactly the JSON it is given, indented, to stdout.
- When stdout is not a terminal, tables are laid out 200 columns wide (or ``$COLUMNS``), so ids are
  never cut in pipes and logs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console, Group, RenderableType
from rich.json import JSON
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


def schedule_state(schedule: Row) -> Text:
    # The detail carries Temporal's own state; a list row only the stored ``enabled``.
    paused = bool(schedule["paused"]) if "paused" in schedule else not schedule.get("enabled", True)
    return Text("paused", style="yellow") if paused else Text("active", style="green")


# -- building blocks ------------------------------------------------------------------------------


def _table(title: str | None = None) -> Table:
    return Table(title=title, title_justify="left", header_style="bold", expand=False)


def _id_column(table: Table, header: str) -> None:
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


# -- schedules ------------------------------------------------------------------------------------


def schedules_table(schedules: Sequence[Row]) -> RenderableType:
    if not schedules:
        return note("no schedules (create one with `runledger schedules create`)")
    table = _table()
    _id_column(table, "SCHEDULE ID")
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


# -- grants ---------------------------------------------------------------------------------------


def grants_table(
    grants: Sequence[Row], now: datetime, used_by: Mapping[str, Sequence[str]] | None = None
) -> RenderableType:
    if not grants:
        return note("no grants")
    table = _table()
    _id_column(table, "GRANT ID")
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


# -- webhooks -------------------------------------------------------------------------------------


def api_keys_table(keys: Sequence[Row]) -> RenderableType:
    if not keys:
        return note("no API keys")
    table = _table()
    _id_column(table, "KEY ID")
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
    table = _table()
    _id_column(table, "TRIGGER ID")
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


def webhook_runs_table(runs: Sequence[Row]) -> RenderableType:
    """The runs of one delivery: those it started, or those an earlier delivery with its id started."""
    if not runs:
        return note("no runs")
    table = _table()
    _id_column(table, "RUN ID")
    _id_column(table, "TRIGGER ID")
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


# -- runs -----------------------------------------------------------------------------------------


def runs_table(runs: Sequence[Row], title: str | None = None) -> RenderableType:
    if not runs:
        return note("no runs")
    table = _table(title)
    _id_column(table, "RUN ID")
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
    table = _table("charges")
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


# -- runs follow ----------------------------------------------------------------------------------

#: How many lines of the call being streamed the live area shows (the whole text is printed once the
#: call is billed).
LIVE_TEXT_LINES = 12


class FollowState:
    """What ``runledger runs follow`` knows about a run, folded from its events (SPEC §4): the status,
    the text of each model call as it streams (``text_delta``: ``call_key``, ``node``, ``text``) and
    the running cost (``usage``: ``credits``, ``cost_usd``, tokens, ``balance_after``)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.status = "-"
        self.pause_reason: str | None = None
        self.calls = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.credits = 0
        self.cost_usd = Decimal(0)
        self.balance_after: int | None = None
        #: Text of the calls not yet billed, by call key, with their node.
        self.streaming: dict[str, tuple[str, str]] = {}
        #: The execution attempt whose text each call key shows (a retried step streams again).
        self.attempts: dict[str, int] = {}
        #: The terminal event (``done`` or ``error``) and its data, once it came.
        self.final: tuple[str, Row] | None = None

    def apply(self, event: str, data: Any) -> list[RenderableType]:
        """Fold one event in; returns what is finished and can be printed for good."""
        row: Row = data if isinstance(data, Mapping) else {"value": data}
        if event == "status":
            self.status = str(row.get("status", self.status))
            self.pause_reason = row.get("pause_reason")
        elif event == "text_delta":
            key = str(row.get("call_key", ""))
            attempt = int(row.get("attempt") or 1)
            shown = self.attempts.setdefault(key, attempt)
            if attempt < shown:
                return []  # a late delta of an attempt that was retried
            node, text = self.streaming.get(key, (str(row.get("node") or key), ""))
            if attempt > shown:
                text = ""  # the step was retried: its text starts over, never shown twice
                self.attempts[key] = attempt
            self.streaming[key] = (node, text + str(row.get("text", "")))
        elif event == "usage":
            self.calls += 1
            self.tokens_in += int(row.get("tokens_in") or 0)
            self.tokens_out += int(row.get("tokens_out") or 0)
            self.credits += int(row.get("credits") or 0)
            self.cost_usd += Decimal(str(row.get("cost_usd") or 0))
            if row.get("balance_after") is not None:
                self.balance_after = int(row["balance_after"])
            key = str(row.get("call_key", ""))
            node, text = self.streaming.pop(key, (key.rsplit(":", 1)[0], ""))
            return [call_section(node, key, text, row)]
        elif event in ("done", "error"):
            self.status = str(row.get("status", self.status))
            self.final = (event, row)
            return self.flush()
        else:  # tool calls, and whatever later versions add
            return [Text(f"{event} {compact_json(data)}", style="dim")]
        return []

    def flush(self) -> list[RenderableType]:
        """The calls that streamed text but were never billed (the run ended during them)."""
        done = [call_section(node, key, text, None) for key, (node, text) in self.streaming.items()]
        self.streaming.clear()
        return done


def call_section(node: str, call_key: str, text: str, usage: Row | None) -> RenderableType:
    header = Text.assemble((f"▌ {node}", "bold cyan"), (f"  {call_key}", "dim"))
    parts: list[RenderableType] = [header, Text(text)]
    if usage is None:
        parts.append(note("(not billed: the run ended during this call)"))
    else:
        parts.append(
            note(
                f"{usage.get('model', '?')} · {int(usage.get('tokens_in') or 0):,} tokens in, "
                f"{int(usage.get('tokens_out') or 0):,} out · {credits(int(usage.get('credits') or 0))} credits "
                f"(provider cost ${usage.get('cost_usd', '0')})"
            )
        )
    parts.append(Text(""))
    return Group(*parts)


def _cost_line(state: FollowState) -> Text:
    line = Text.assemble(
        ("cost ", "bold"),
        credits_with_usd(state.credits),
        f" · {state.calls} call(s) · {state.tokens_in:,} tokens in, {state.tokens_out:,} out",
        f" · provider ${state.cost_usd:f}",
    )
    if state.balance_after is not None:
        line.append(f" · balance {credits(state.balance_after)} credits")
    return line


def follow_view(state: FollowState) -> RenderableType:
    """The live area: the call streaming now (its last lines), then status and running cost."""
    parts: list[RenderableType] = []
    for key, (node, text) in state.streaming.items():
        tail = "\n".join(text.splitlines()[-LIVE_TEXT_LINES:])
        parts += [Text.assemble((f"▌ {node}", "bold cyan"), (f"  {key} …", "dim")), Text(tail)]
    status = Text.assemble(
        ("run ", "bold"), state.run_id, "  ", status_text(state.status, state.pause_reason)
    )
    return Group(*parts, status, _cost_line(state))


def follow_summary(state: FollowState) -> RenderableType:
    """The last lines: how the run ended and what it cost."""
    status = Text.assemble(("run ", "bold"), state.run_id, " ended ", status_text(state.status))
    if state.final is not None and state.final[0] == "error":
        error = state.final[1]
        status.append(f": {error.get('code') or state.status}", style="red")
        if error.get("message"):
            status.append(f" ({error['message']})", style="red")
    parts: list[RenderableType] = [status, _cost_line(state)]
    if state.final is not None and state.final[1].get("cost_credits") is not None:
        parts.append(note(f"run total: {credits_with_usd(int(state.final[1]['cost_credits']))}"))
    return Group(*parts)
