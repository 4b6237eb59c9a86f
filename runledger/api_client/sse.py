"""The ``text/event-stream`` format of a run's events (``GET /api/v1/runs/{id}/events``, SPEC §4): the
incremental parser and the decoded event. Pure: no I/O; :meth:`runledger.api_client.ApiClient.run_events`
reads the stream and resumes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunEvent:
    """One Server-Sent Event of a run: ``id`` is the run's event sequence number, ``data`` the decoded JSON."""

    id: str | None
    event: str
    data: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "id": int(self.id) if self.id and self.id.isdigit() else self.id,
            "event": self.event,
            "data": self.data,
        }


class SseParser:
    """Incremental ``text/event-stream`` parser (the WHATWG rules): feed it lines without their line
    endings; a blank line dispatches the message gathered so far. Comments (pings) are skipped; the
    last ``id:`` carries over to later messages, as the spec says."""

    def __init__(self, last_id: str | None = None) -> None:
        self.last_id = last_id
        self.retry_ms: int | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str, str, str | None] | None:
        """``(event, data, last_id)`` when ``line`` completes a message, else None."""
        if not line:
            data, event = self._data, self._event or "message"
            self._data, self._event = [], ""
            return (event, "\n".join(data), self.last_id) if data else None
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None
