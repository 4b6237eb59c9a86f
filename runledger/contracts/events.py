"""The run-event vocabulary (SPEC §4): what a state change appends to a run's stream.

Pure builders of ``(event, data)`` pairs, shared by the worker and the API so that a run started,
skipped or finished anywhere reads the same to a listener.
"""

from __future__ import annotations

from typing import Any

Event = tuple[str, dict[str, Any]]


def status_event(status: str, **extra: Any) -> Event:
    return "status", {"status": status, **{k: v for k, v in extra.items() if v is not None}}


def terminal_events(
    status: str, *, error_code: str | None, error_message: str | None, output: Any, cost_credits: int
) -> list[Event]:
    """The status change plus exactly one ``done`` (success) or ``error`` (anything else)."""
    final = (
        ("done", {"status": status, "output": output, "cost_credits": cost_credits})
        if status == "success"
        else (
            "error",
            {"status": status, "code": error_code, "message": error_message, "cost_credits": cost_credits},
        )
    )
    return [status_event(status), final]


def opening_events(status: str, *, error_code: str | None, error_message: str | None) -> list[Event]:
    """The first events of a run a trigger recorded (a schedule slot, a webhook delivery):
    ``pending``, or, when its grant refused it, its ``skipped`` end at no cost."""
    if status == "skipped":
        return terminal_events(
            status, error_code=error_code, error_message=error_message, output=None, cost_credits=0
        )
    return [status_event(status)]
