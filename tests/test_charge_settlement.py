"""Failed charge writes settle (NO_SILENT_UNBILLED_CALLS): a charge write is retried in place under
the same key; when every try fails the call is left ``unsettled`` with the charge it owes, which the
run's next attempt writes before its graph runs again (so the paid call is replayed, not bought
twice), and which ``runledger reconcile`` writes otherwise. The failures are real Postgres errors
(``tests.faults``)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from activities.metering import ChargeNotWrittenError, LedgerMeter
from activities.reconcile import reconcile_once
from db import ledger, ledger_reads, runs
from db.models import GraphRun
from db.session import Database
from runledger.contracts import ids
from runledger.llm import LiteLLMGateway, ModelRequest
from tests.db.queries import rows
from tests.fakes.openai_server import FakeProvider
from tests.faults import failing_inserts
from tests.helpers import ADMIN, Tenant, create_user, eventually, start_run, wait_for_run


async def _calls(database: Database, run_id: str) -> list[dict[str, Any]]:
    return await rows(
        database,
        "SELECT attempt, status, charge IS NOT NULL AS owes, error_message FROM model_calls"
        " WHERE run_id = :r ORDER BY attempt",
        r=run_id,
    )


async def _receipts(database: Database, run_id: str) -> list[dict[str, Any]]:
    return await rows(
        database,
        "SELECT attempt, usage_unit_id, charged_credits FROM charge_receipts WHERE run_id = :r",
        r=run_id,
    )


@pytest.mark.usefixtures("worker")
async def test_a_failed_charge_write_is_retried_in_place_under_the_same_key(
    api: httpx.AsyncClient, user: Tenant, database: Database, fake_provider: FakeProvider
) -> None:
    before = fake_provider.log.count()
    async with failing_inserts(database, "charge_receipts", user.billing_account_id, times=3) as fault:
        run = await wait_for_run(api, user, (await start_run(api, user)).json()["run_id"], within=60)
        assert await fault.fired() == 3
    assert run["status"] == "success", run
    assert fake_provider.log.count() - before == 1
    # One attempt, one call, one receipt: the write was retried where it failed.
    assert [(c["attempt"], c["status"]) for c in await _calls(database, run["run_id"])] == [(1, "settled")]
    assert [r["attempt"] for r in await _receipts(database, run["run_id"])] == [1]


@pytest.mark.usefixtures("worker")
async def test_a_later_attempt_first_settles_the_charge_an_earlier_attempt_owes(
    api: httpx.AsyncClient, user: Tenant, database: Database, fake_provider: FakeProvider
) -> None:
    before = fake_provider.log.count()
    async with failing_inserts(database, "charge_receipts", user.billing_account_id) as fault:
        run_id = (await start_run(api, user)).json()["run_id"]
        owed = await eventually(
            lambda: _calls(database, run_id),
            until=lambda calls: any(c["status"] == "unsettled" and c["owes"] for c in calls),
            within=60,
        )
        assert "the charge write failed" in owed[0]["error_message"]
        await fault.stop()
        run = await wait_for_run(api, user, run_id, within=90)
    assert run["status"] == "success", run
    # The provider answered once: the retry wrote attempt 1's charge and replayed its answer.
    assert fake_provider.log.count() - before == 1
    calls = await _calls(database, run_id)
    assert [(c["attempt"], c["status"]) for c in calls] == [(1, "settled")]
    receipts = await _receipts(database, run_id)
    assert [r["attempt"] for r in receipts] == [1]
    assert receipts[0]["usage_unit_id"] == ids.usage_unit_id(run_id=run_id, call_key="write_poem:1.0")
    assert run["cost_credits"] == receipts[0]["charged_credits"]


async def _running_run(database: Database, user: Tenant) -> str:
    run_id = str(uuid.uuid4())
    async with database.transaction() as session:
        session.add(
            GraphRun(
                run_id=run_id,
                workflow_id=ids.graph_run_workflow_id(run_id),
                graph_id="langgraph:poet",
                billing_account_id=user.billing_account_id,
                run_kind="user_immediate",
                trigger_source="api",
                requested_by=user.user_id,
                input={"topic": "x"},
                trace_id=ids.langfuse_trace_id(run_id),
            )
        )
    async with database.transaction() as session:
        assert await runs.transition(session, run_id=run_id, to="running")
    return run_id


async def test_reconcile_writes_owed_charges_and_the_report_lists_them(
    api: httpx.AsyncClient, database: Database, gateway: LiteLLMGateway
) -> None:
    user = await create_user(api, credits=5_000_000)
    run_id = await _running_run(database, user)
    meter = LedgerMeter(
        database=database,
        run_id=run_id,
        graph_id="langgraph:poet",
        billing_account_id=user.billing_account_id,
        attempt=1,
        markup=Decimal(2),
        bound=gateway.call_bound,
    )
    request = ModelRequest(
        model="openai/gpt-4o-mini", messages=({"role": "user", "content": "a poem"},), max_tokens=50
    )
    async with failing_inserts(database, "charge_receipts", user.billing_account_id):
        with pytest.raises(ChargeNotWrittenError):
            await meter.call("poem:0", request, gateway.invoke)
    assert [(c["status"], c["owes"]) for c in await _calls(database, run_id)] == [("unsettled", True)]
    assert await _receipts(database, run_id) == []

    result = await reconcile_once(database, threshold_seconds=3600)
    assert result.settled_calls >= 1
    assert [(c["status"], c["owes"]) for c in await _calls(database, run_id)] == [("settled", False)]
    receipts = await _receipts(database, run_id)
    assert [r["attempt"] for r in receipts] == [1]
    async with database.transaction() as session:
        balance = await ledger.get_balance(session, billing_account_id=user.billing_account_id)
        assert balance == 5_000_000 - receipts[0]["charged_credits"]
        assert balance == await ledger_reads.ledger_sum(session, billing_account_id=user.billing_account_id)
    report = (await api.get("/api/v1/billing/reconciliation", headers=ADMIN)).json()
    assert run_id in {c["run_id"] for c in report["details"]["settled_calls"]}
    # Reconciling again writes nothing new (the same key).
    again = await reconcile_once(database, threshold_seconds=3600)
    assert run_id not in {
        c["run_id"]
        for c in (await api.get("/api/v1/billing/reconciliation", headers=ADMIN)).json()["details"][
            "settled_calls"
        ]
    }
    assert again.report_id > result.report_id
