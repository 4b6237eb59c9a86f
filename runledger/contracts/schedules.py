"""Schedule vocabulary and the payloads of ``ScheduledRunWorkflow``.

The Temporal schedule ``schedule:{schedule_id}`` starts ``ScheduledRunWorkflow`` with the graph and
its input as arguments (so every PATCH of the input reaches Temporal); the slot time comes only from
the ``TemporalScheduledStartTime`` search attribute that Temporal sets (SCHEDULED_TIME_FROM_TEMPORAL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from temporalio.common import SearchAttributeKey

SCHEDULED_RUN_WORKFLOW = "ScheduledRunWorkflow"
SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


class Overlap(StrEnum):
    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    BUFFER_ALL = "buffer_all"
    CANCEL_OTHER = "cancel_other"
    TERMINATE_OTHER = "terminate_other"
    ALLOW_ALL = "allow_all"


def scheduled_action_workflow_id(schedule_id: str) -> str:
    """Prefix of the ids Temporal gives the workflows a schedule starts (it appends the slot time)."""
    return f"scheduled-run:{schedule_id}"


@dataclass
class ScheduledRunInput:
    schedule_id: str
    graph_id: str
    input: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecordSlotInput:
    schedule_id: str
    graph_id: str
    scheduled_for: datetime
    input: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecordSlotResult:
    run_id: str
    billing_account_id: str
    status: str
    created: bool
    error_code: str | None = None
    credit_wait_seconds: int = 86_400
    input_wait_seconds: int = 86_400
