"""RUN_ID_CANONICAL, WORKFLOW_ID_FROM_RUN_ID: identities are pure functions of business keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from runledger.contracts import ids


def test_RUN_ID_CANONICAL_api_key_gives_stable_uuid5() -> None:
    a = ids.api_run_id(billing_account_id="acct", graph_id="langgraph:poet", idempotency_key="k1")
    b = ids.api_run_id(billing_account_id="acct", graph_id="langgraph:poet", idempotency_key="k1")
    assert a == b
    assert uuid.UUID(a).version == 5
    assert a == str(uuid.uuid5(ids.RUN_ID_NAMESPACE, "api:acct:langgraph:poet:k1"))


@pytest.mark.parametrize(
    "other",
    [
        {"billing_account_id": "acct2", "graph_id": "langgraph:poet", "idempotency_key": "k1"},
        {"billing_account_id": "acct", "graph_id": "langgraph:brief", "idempotency_key": "k1"},
        {"billing_account_id": "acct", "graph_id": "langgraph:poet", "idempotency_key": "k2"},
    ],
)
def test_RUN_ID_CANONICAL_each_key_part_matters(other: dict[str, str]) -> None:
    base = ids.api_run_id(billing_account_id="acct", graph_id="langgraph:poet", idempotency_key="k1")
    assert ids.api_run_id(**other) != base


def test_RUN_ID_CANONICAL_no_key_gives_fresh_uuid4() -> None:
    a = ids.api_run_id(billing_account_id="acct", graph_id="g", idempotency_key=None)
    b = ids.api_run_id(billing_account_id="acct", graph_id="g", idempotency_key=None)
    assert a != b
    assert uuid.UUID(a).version == 4


def test_RUN_ID_CANONICAL_schedule_slot_is_timezone_independent() -> None:
    utc = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    cet = utc.astimezone(timezone(timedelta(hours=1)))
    assert ids.scheduled_run_id(schedule_id="s", scheduled_for=utc) == ids.scheduled_run_id(
        schedule_id="s", scheduled_for=cet
    )
    expected = str(uuid.uuid5(ids.RUN_ID_NAMESPACE, "schedule:s:2026-11-25T09:00:00Z"))
    assert ids.scheduled_run_id(schedule_id="s", scheduled_for=utc) == expected
    with pytest.raises(ValueError, match="timezone-aware"):
        ids.scheduled_run_id(schedule_id="s", scheduled_for=datetime(2026, 1, 1))  # noqa: DTZ001


def test_RUN_ID_CANONICAL_webhook_and_replay() -> None:
    assert ids.webhook_run_id(source="gh", delivery_id="d1", trigger_id="t") == str(
        uuid.uuid5(ids.RUN_ID_NAMESPACE, "webhook:gh:d1:t")
    )
    assert ids.replay_run_id() != ids.replay_run_id()


def test_WORKFLOW_ID_FROM_RUN_ID_round_trips() -> None:
    run_id = str(uuid.uuid4())
    workflow_id = ids.graph_run_workflow_id(run_id)
    assert workflow_id == f"graph-run:{run_id}"
    assert ids.run_id_from_workflow_id(workflow_id) == run_id
    with pytest.raises(ValueError, match="not a graph run"):
        ids.run_id_from_workflow_id("something-else")
    assert ids.temporal_schedule_id("abc") == "schedule:abc"


def test_IDEMPOTENT_CHARGES_source_reference_shape() -> None:
    assert ids.charge_source_reference(run_id="r", attempt=2, usage_unit_id="u") == "r/2/u"
    with pytest.raises(ValueError, match="usage_unit_id"):
        ids.charge_source_reference(run_id="r", attempt=1, usage_unit_id="")


def test_usage_unit_id_is_ours_stable_per_call_and_distinct_between_calls() -> None:
    first = ids.usage_unit_id(run_id="r", call_key="generate:0")
    assert first == ids.usage_unit_id(run_id="r", call_key="generate:0")  # every attempt, every retry
    assert str(uuid.UUID(first)) == first
    assert first != ids.usage_unit_id(run_id="r", call_key="generate:1")
    assert first != ids.usage_unit_id(run_id="other", call_key="generate:0")


def test_trace_id_is_derived_from_run_id() -> None:
    assert ids.langfuse_trace_id("run-42") == "92234f8bb000a4aaec76c3fc1624a580"


def test_tool_effect_key_is_the_run_and_the_tool_call_id() -> None:
    assert ids.tool_effect_key(run_id="r-1", tool_call_id="call_abc") == "r-1/call_abc"
    assert ids.tool_effect_key(run_id="r-1", tool_call_id="agent:tool:0") == "r-1/agent:tool:0"
