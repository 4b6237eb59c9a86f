"""What ``runledger runs follow`` shows: :class:`FollowState` folds a run's events (SPEC §4) in, and
the renderers draw the live area (the call streaming now, the status, the running cost), each
billed call once it is final, and the summary once the run ended."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from runledger.cli.tables.base import (
    Row,
    compact_json,
    credits,
    credits_with_usd,
    note,
    status_text,
)

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
