"""Tools as data: what a tool is, what it may do, and the codes a refused or failed call gets.

A graph reaches a tool only through the tool runner (``tools.call``), and only a tool its catalog
entry declares (``GraphSpec.tool_ids``): every other tool is denied (DENY_BY_DEFAULT_TOOLS). The
implementations live in ``tools/``; this module is their public description, importable by the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ToolEffect(StrEnum):
    READ_ONLY = "read_only"
    STATE_CHANGE = "state_change"
    EXTERNAL_SIDE_EFFECT = "external_side_effect"


class ToolErrorCode(StrEnum):
    #: No tool has this id.
    UNAVAILABLE = "tool_unavailable"
    #: The run's policy does not allow this tool (the default for every tool a graph did not declare).
    POLICY_DENIED = "tool_policy_denied"
    INVALID_INPUT = "tool_invalid_input"
    EXECUTION_FAILED = "tool_execution_failed"
    INVALID_OUTPUT = "tool_invalid_output"
    #: The tool needs approval and the person resuming the run declined it: it never ran.
    APPROVAL_DENIED = "tool_approval_denied"


@dataclass(frozen=True)
class ToolSpec:
    #: Namespaced: ``core__<name>`` for built-in tools.
    tool_id: str
    description: str
    effect: ToolEffect
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


CURRENT_TIME = ToolSpec(
    tool_id="core__current_time",
    description="The current time in UTC, and in an IANA time zone if one is given.",
    effect=ToolEffect.READ_ONLY,
    input_schema={
        "type": "object",
        "properties": {"timezone": {"type": "string", "minLength": 1, "maxLength": 64}},
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "properties": {
            "utc": {"type": "string"},
            "local": {"type": ["string", "null"]},
            "timezone": {"type": ["string", "null"]},
        },
        "required": ["utc", "local", "timezone"],
        "additionalProperties": False,
    },
)

TOOL_CATALOG: dict[str, ToolSpec] = {spec.tool_id: spec for spec in (CURRENT_TIME,)}


def get_tool_spec(tool_id: str) -> ToolSpec | None:
    return TOOL_CATALOG.get(tool_id)
