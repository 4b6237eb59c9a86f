"""Run vocabulary and the payloads of the graph-run workflow and its activities.

Every workflow and activity takes one dataclass and returns one. Fields are only ever added, always
with a default, so histories written by older code still replay. No payload carries a secret: it
would be stored in Temporal history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

GRAPH_RUN_WORKFLOW = "GraphRunWorkflow"


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCESS = "success"
    ERROR = "error"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


TERMINAL_STATUSES = frozenset({RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.CANCELLED, RunStatus.SKIPPED})
#: The statuses in which a run occupies its LangGraph thread.
ON_THREAD_STATUSES = frozenset({RunStatus.RUNNING, RunStatus.PAUSED})


class RunKind(StrEnum):
    USER_IMMEDIATE = "user_immediate"
    SYSTEM_SCHEDULED = "system_scheduled"
    SYSTEM_WEBHOOK = "system_webhook"
    REPLAY = "replay"


class TriggerSource(StrEnum):
    API = "api"
    TEMPORAL_SCHEDULE = "temporal_schedule"
    REPLAY = "replay"


@dataclass
class GraphRunInput:
    """Start payload of ``GraphRunWorkflow``. The run row in Postgres holds everything else."""

    run_id: str
    graph_id: str
    billing_account_id: str
    run_kind: str = RunKind.USER_IMMEDIATE
    #: How long a run paused for credits waits for a top-up before it ends ``insufficient_credits``.
    credit_wait_seconds: int = 86_400
    #: How long a run paused by ``interrupt()`` or an approval waits before it ends ``input_timeout``.
    input_wait_seconds: int = 86_400
    #: Set by every starter of this release: the first execution authorizes the run (one step less).
    #: Histories of earlier releases lack it and replay their ``authorize_run`` local activity.
    authorize_in_execute: bool = False


#: Signal sent to a run paused for credits when its account is topped up.
CREDITS_ADDED_SIGNAL = "credits_added"
#: Signal carrying the value a run paused for input (``awaiting_input`` / ``awaiting_approval``)
#: resumes with: ``{"value": ...}``.
RESUME_SIGNAL = "resume"


class PauseReason(StrEnum):
    INSUFFICIENT_CREDITS = "insufficient_credits"
    AWAITING_INPUT = "awaiting_input"
    AWAITING_APPROVAL = "awaiting_approval"


#: ``interrupt()`` values of this ``kind`` are approval requests made by the tool runner.
APPROVAL_KIND = "runledger.approval"


def pause_reason_of(interrupt_value: Any) -> PauseReason:
    """A tool-approval request pauses ``awaiting_approval``; any other interrupt ``awaiting_input``."""
    if isinstance(interrupt_value, dict) and interrupt_value.get("kind") == APPROVAL_KIND:
        return PauseReason.AWAITING_APPROVAL
    return PauseReason.AWAITING_INPUT


@dataclass
class GraphRunResult:
    run_id: str
    status: str
    error_code: str | None = None
    model_calls: int = 0
    charged_credits: int = 0


@dataclass
class AuthorizeInput:
    run_id: str


@dataclass
class AuthorizeResult:
    allowed: bool
    error_code: str | None = None
    error_message: str | None = None


@dataclass
class ExecuteInput:
    run_id: str
    #: Added to Temporal's activity attempt to form the charge ``attempt``: each resumption after a
    #: pause is a new activity whose attempts restart at 1, and must not reuse earlier numbers.
    attempt_base: int = 0
    #: Continue a graph paused by ``interrupt()`` with ``Command(resume=resume_value)``.
    resuming: bool = False
    resume_value: Any = None
    #: The run's first execution authorizes the run itself (``activities.authorize``) before the graph.
    authorize: bool = False


@dataclass
class ExecuteResult:
    model_calls: int
    charged_credits: int
    #: The values of the graph's pending ``interrupt()`` calls; empty when it finished.
    interrupts: list[Any] = field(default_factory=list)
    #: The run's terminal status when the execution ended the run itself (its graph finished: output,
    #: totals, hold and ``done`` in its last statement); None when the workflow still finalizes it.
    finished: str | None = None
    #: Set when the execution's preflight refused the run (a stable code, e.g. ``insufficient_credits``):
    #: no graph ran and the workflow finalizes the run with it.
    refused: str | None = None
    refused_message: str | None = None


@dataclass
class InputPauseInput:
    run_id: str
    interrupts: list[Any] = field(default_factory=list)


@dataclass
class InputPauseResult:
    pause_reason: str


@dataclass
class PauseInput:
    run_id: str
    needed_credits: int


@dataclass
class PauseResult:
    #: Credits arrived while pausing: go on at once instead of waiting for a signal.
    resume_now: bool


@dataclass
class ResumeInput:
    run_id: str


@dataclass
class FinalizeInput:
    run_id: str
    status: str
    error_code: str | None = None
    error_message: str | None = None


@dataclass
class FinalizeResult:
    status: str
    changed: bool
    #: The run's receipts and their credits, as the move left them (0 when nothing moved).
    model_calls: int = 0
    cost_credits: int = 0
