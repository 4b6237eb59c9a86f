"""Canonical identities (SPEC §2): pure functions, no I/O, no clock, no randomness except uuid4
where the SPEC asks for a fresh id.

Every other module derives run ids, workflow ids, schedule ids and charge references through these
functions; nothing else formats them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

#: The project's fixed namespace for uuid5 run ids. Never change it: every stored run id and
#: every idempotency guarantee depends on it.
RUN_ID_NAMESPACE = uuid.UUID("6f1c3f7e-2b1a-5c9e-9a57-3e8f0d2c4b11")

GRAPH_RUN_WORKFLOW_PREFIX = "graph-run:"
SCHEDULE_PREFIX = "schedule:"


def api_run_id(*, billing_account_id: str, graph_id: str, idempotency_key: str | None) -> str:
    """Run id of an API-triggered run: stable for a key, fresh (uuid4) without one."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(RUN_ID_NAMESPACE, f"api:{billing_account_id}:{graph_id}:{idempotency_key}"))


def scheduled_run_id(*, schedule_id: str, scheduled_for: datetime) -> str:
    """Run id of one schedule slot; ``scheduled_for`` must be timezone-aware."""
    if scheduled_for.tzinfo is None:
        raise ValueError("scheduled_for must be timezone-aware")
    slot = scheduled_for.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return str(uuid.uuid5(RUN_ID_NAMESPACE, f"schedule:{schedule_id}:{slot}"))


def webhook_run_id(*, source: str, delivery_id: str, trigger_id: str) -> str:
    """Run id of a webhook delivery: one delivery of one trigger gives one run."""
    return str(uuid.uuid5(RUN_ID_NAMESPACE, f"webhook:{source}:{delivery_id}:{trigger_id}"))


def replay_run_id() -> str:
    """A replay is a new run; its link to the original lives in ``replay_of``."""
    return str(uuid.uuid4())


def graph_run_workflow_id(run_id: str) -> str:
    """Temporal workflow id of a graph run."""
    return f"{GRAPH_RUN_WORKFLOW_PREFIX}{run_id}"


def run_id_from_workflow_id(workflow_id: str) -> str:
    """Inverse of :func:`graph_run_workflow_id`."""
    if not workflow_id.startswith(GRAPH_RUN_WORKFLOW_PREFIX):
        raise ValueError(f"not a graph run workflow id: {workflow_id!r}")
    return workflow_id[len(GRAPH_RUN_WORKFLOW_PREFIX) :]


def temporal_schedule_id(schedule_id: str) -> str:
    """Temporal schedule id of a runledger schedule."""
    return f"{SCHEDULE_PREFIX}{schedule_id}"


def usage_unit_id(*, run_id: str, call_key: str) -> str:
    """runledger's own id of one model call of a run (``call_key`` is its stable position in the
    graph, ``{node}:{n}``): the same for every attempt and every retried charge write of that call,
    and never taken from the provider, whose response ids may repeat. The provider's id is kept
    beside it (``provider_response_id``)."""
    return str(uuid.uuid5(RUN_ID_NAMESPACE, f"model-call:{run_id}:{call_key}"))


def charge_source_reference(*, run_id: str, attempt: int, usage_unit_id: str) -> str:
    """Idempotency reference of one charge: ``{run_id}/{attempt}/{usage_unit_id}``."""
    if not usage_unit_id:
        raise ValueError("usage_unit_id is required: a charge without a call id is not idempotent")
    return f"{run_id}/{attempt}/{usage_unit_id}"


def tool_effect_key(*, run_id: str, tool_call_id: str) -> str:
    """A tool call's effect key (EXACTLY_ONCE_TOOL_EFFECTS): the model's tool-call id (or the call's
    ordinal in its node and step, ``{node}:{step}.tool:{n}``, where it has none) within the run. A write tool's
    recorded result is keyed by it, and the tool is handed it as its idempotency key."""
    return f"{run_id}/{tool_call_id}"


def langfuse_trace_id(run_id: str) -> str:
    """Langfuse trace id of a run: the first 32 hex chars of sha256(run_id), as Langfuse derives it
    from a seed, so the id is known before any span exists."""
    import hashlib

    return hashlib.sha256(run_id.encode()).hexdigest()[:32]
