"""The built-in ``core__*`` tools. Each takes its validated arguments and returns a JSON object."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runledger.contracts.tools import CURRENT_TIME, GITHUB_CREATE_ISSUE_COMMENT

ToolFn = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ToolInputError(ValueError):
    """Arguments that pass the schema but still make no sense (an unknown time zone)."""


async def current_time(args: dict[str, Any]) -> dict[str, Any]:
    # A tool runs inside an activity, never in workflow code: reading the clock here is allowed.
    now = datetime.now(UTC)
    name = args.get("timezone")
    if name is None:
        return {"utc": now.isoformat(), "local": None, "timezone": None}
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ToolInputError(f"unknown time zone {name!r}") from exc
    return {"utc": now.isoformat(), "local": now.astimezone(zone).isoformat(), "timezone": name}


#: Implementation of every tool in ``contracts.tools.TOOL_CATALOG``, by id.
def _github_comment() -> ToolFn:
    from runledger.tools.github import create_issue_comment

    return create_issue_comment


REGISTRY: dict[str, ToolFn] = {
    CURRENT_TIME.tool_id: current_time,
    GITHUB_CREATE_ISSUE_COMMENT.tool_id: _github_comment(),
}
