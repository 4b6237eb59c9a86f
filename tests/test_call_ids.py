"""Our own call ids: ``usage_unit_id`` is runledger's id for a model call, stable across the call's
attempts; the provider's response id is kept beside it and never keys a charge."""

from __future__ import annotations

import httpx
import pytest

from db.session import Database
from runledger.contracts import ids
from tests.db.queries import rows
from tests.fakes.openai_server import FakeProvider
from tests.helpers import Tenant, start_run, wait_for_run


@pytest.mark.usefixtures("worker")
async def test_a_provider_repeating_its_response_ids_still_gets_one_receipt_per_call(
    api: httpx.AsyncClient, user: Tenant, database: Database, fake_provider: FakeProvider
) -> None:
    fake_provider.log.repeat_id = "chatcmpl-always-the-same"
    try:
        started = await start_run(api, user, graph_id="langgraph:brief")
        run = await wait_for_run(api, user, started.json()["run_id"], within=60)
    finally:
        fake_provider.log.repeat_id = None
    assert run["status"] == "success", run
    receipts = (await api.get(f"/api/v1/runs/{run['run_id']}/charges", headers=user.headers)).json()[
        "receipts"
    ]
    assert len(receipts) == 3 == run["model_calls"]
    assert {r["provider_response_id"] for r in receipts} == {"chatcmpl-always-the-same"}
    calls = await rows(
        database,
        "SELECT call_key, usage_unit_id, provider_response_id, status FROM model_calls WHERE run_id = :r",
        r=run["run_id"],
    )
    assert sorted(r["usage_unit_id"] for r in receipts) == sorted(
        ids.usage_unit_id(run_id=run["run_id"], call_key=c["call_key"]) for c in calls
    )
    assert {c["status"] for c in calls} == {"settled"}
    conflicts = await rows(
        database,
        "SELECT count(*) AS n FROM charge_conflicts WHERE source_reference LIKE :r",
        r=f"{run['run_id']}/%",
    )
    assert conflicts == [{"n": 0}]


@pytest.mark.usefixtures("worker")
async def test_a_retried_call_keeps_its_usage_unit_id_across_attempts(
    api: httpx.AsyncClient, user: Tenant, database: Database, fake_provider: FakeProvider
) -> None:
    fake_provider.log.fail_next = 1  # attempt 1's call is refused; attempt 2 makes it again
    run = await wait_for_run(api, user, (await start_run(api, user)).json()["run_id"], within=60)
    assert run["status"] == "success", run
    calls = await rows(
        database,
        "SELECT attempt, status, call_key, usage_unit_id FROM model_calls WHERE run_id = :r ORDER BY attempt",
        r=run["run_id"],
    )
    assert [(c["attempt"], c["status"]) for c in calls] == [(1, "failed"), (2, "settled")]
    assert calls[0]["usage_unit_id"] == calls[1]["usage_unit_id"]
    assert calls[0]["usage_unit_id"] == ids.usage_unit_id(run_id=run["run_id"], call_key=calls[0]["call_key"])
