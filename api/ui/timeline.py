"""A run's events as timeline rows: one summarizer, used for the rows the detail page draws and for
the rows its live stream appends (``/ui/runs/{id}/events`` sends :func:`row` as each event's data),
so a live row and a reloaded row read the same."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from db.models import RunEvent

#: Longest detail shown inline (tool results, outputs); the run's own fields hold the full values.
MAX_DETAIL = 600


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def row(seq: int, event: str, data: dict[str, Any]) -> dict[str, Any]:
    """``{seq, kind, label, detail, status}``; ``status`` is set when the event changes the run's."""
    kind, label, detail = event, event, ""
    if event == "status":
        label = f"status → {data.get('status')}"
        if data.get("pause_reason"):
            label += f" ({data['pause_reason']})"
    elif event == "text_delta":
        kind, label, detail = "text", "model output", str(data.get("text", data.get("delta", "")))
    elif event == "usage":
        kind, label = "model_call", f"model call {data.get('model', '')}"
        detail = (
            f"{data.get('tokens_in', 0)} tokens in, {data.get('tokens_out', 0)} out · "
            f"${data.get('cost_usd', '0')} · {data.get('credits', 0):,} credits"
        )
    elif event == "tool_call_start":
        label = f"tool call {data.get('tool_id')} ({data.get('effect', '')})"
        detail = _short(data.get("args", {}))
    elif event == "tool_call_result":
        ok = data.get("ok")
        label = f"tool result {data.get('tool_id')}: {'ok' if ok else data.get('error_code', 'failed')}"
        detail = _short(data.get("result") if ok else data.get("message", ""))
    elif event == "step":
        nodes = data.get("nodes") or [data.get("node", "")]
        label = f"step {data.get('step', '')}: {', '.join(str(n) for n in nodes)}"
        detail = f"{data.get('cost_credits_so_far', 0):,} credits so far · checkpoint {data.get('checkpoint_id', '')}"
    elif event == "interrupt":
        kind = "pause"
        label = f"paused: {data.get('pause_reason', 'awaiting_input')}"
        detail = _short(data.get("values", data))
    elif event == "done":
        label, detail = "done", f"{data.get('cost_credits', 0):,} credits"
    elif event == "error":
        label = f"{data.get('status', 'error')}: {data.get('code') or ''}"
        detail = str(data.get("message") or "")
    else:
        detail = _short(data)
    status = data.get("status") if event in ("status", "done", "error") else None
    return {"seq": seq, "kind": kind, "label": label, "detail": detail, "status": status}


def rows(events: Iterable[RunEvent]) -> list[dict[str, Any]]:
    """Stored events as rows, consecutive model-output deltas merged into one row (as the page's
    script merges them live)."""
    out: list[dict[str, Any]] = []
    for event in events:
        current = row(event.seq, event.event, event.data)
        if current["kind"] == "text" and out and out[-1]["kind"] == "text":
            out[-1] = {**out[-1], "seq": current["seq"], "detail": out[-1]["detail"] + current["detail"]}
        else:
            out.append(current)
    return out
