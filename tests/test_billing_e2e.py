"""A paid run end to end: every model call the provider answered is one receipt, one ledger debit
and one balance change, and the cached balance always equals the ledger's sum."""

from __future__ import annotations

import httpx
import pytest

from db.session import Database
from tests.db.queries import rows, scalar
from tests.fakes.openai_server import FakeProvider
from tests.helpers import Tenant, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")


async def test_IDEMPOTENT_CHARGES_multi_call_run_receipts_equal_model_calls(
    api: httpx.AsyncClient, user: Tenant, database: Database, fake_provider: FakeProvider
) -> None:
    before_calls = set(fake_provider.log.ids())
    balance_before = (await api.get("/api/v1/me", headers=user.headers)).json()["balance_credits"]

    started = await start_run(api, user, graph_id="langgraph:brief", key="brief-1")
    assert started.status_code == 202
    run = await wait_for_run(api, user, started.json()["run_id"])
    assert run["status"] == "success", run
    assert set(run["output"]) == {"outline", "draft", "review"}

    receipts = (await api.get(f"/api/v1/runs/{run['run_id']}/charges", headers=user.headers)).json()[
        "receipts"
    ]
    provider_ids = set(fake_provider.log.ids()) - before_calls
    assert len(receipts) == 3 == run["model_calls"]
    assert {r["provider_response_id"] for r in receipts} == provider_ids
    # The charge key is runledger's own call id, one per call, never the provider's.
    assert len({r["usage_unit_id"] for r in receipts}) == 3
    assert not {r["usage_unit_id"] for r in receipts} & provider_ids
    for receipt in receipts:
        assert (
            receipt["source_reference"] == f"{run['run_id']}/{receipt['attempt']}/{receipt['usage_unit_id']}"
        )
        assert receipt["model"] == "gpt-4o-mini"
        assert receipt["provider"] == "openai"
        assert receipt["tokens_in"] > 0
        assert receipt["tokens_out"] > 0
        assert receipt["charged_credits"] > 0

    charged = sum(r["charged_credits"] for r in receipts)
    balance_after = (await api.get("/api/v1/me", headers=user.headers)).json()["balance_credits"]
    assert balance_before - balance_after == charged == run["cost_credits"]

    ledger = (
        await api.get("/api/v1/billing/ledger", params={"run_id": run["run_id"]}, headers=user.headers)
    ).json()["entries"]
    assert sorted(-e["amount"] for e in ledger) == sorted(r["charged_credits"] for r in receipts)
    assert {e["receipt_id"] for e in ledger} == {r["id"] for r in receipts}
    assert ledger[0]["balance_after"] == balance_after

    ledger_sum = await scalar(
        database,
        "SELECT sum(amount) FROM credit_ledger WHERE billing_account_id = :a",
        a=user.billing_account_id,
    )
    assert ledger_sum == balance_after
    calls = await rows(database, "SELECT status FROM model_calls WHERE run_id = :r", r=run["run_id"])
    assert [c["status"] for c in calls] == ["settled"] * 3


async def test_charge_is_priced_by_litellm_with_markup(
    api: httpx.AsyncClient, user: Tenant, fake_provider: FakeProvider
) -> None:
    """gpt-4o-mini is priced by LiteLLM's own cost map: $0.15/M input, $0.60/M output tokens."""
    run = await wait_for_run(api, user, (await start_run(api, user)).json()["run_id"])
    (receipt,) = (await api.get(f"/api/v1/runs/{run['run_id']}/charges", headers=user.headers)).json()[
        "receipts"
    ]
    from decimal import ROUND_CEILING, Decimal

    cost = Decimal(receipt["tokens_in"]) * Decimal("0.00000015") + Decimal(receipt["tokens_out"]) * Decimal(
        "0.0000006"
    )
    assert Decimal(receipt["cost_usd"]) == cost
    assert Decimal(receipt["markup"]) == Decimal(2)
    expected = int((cost * 2 * 10**7).to_integral_value(rounding=ROUND_CEILING))
    assert receipt["charged_credits"] == expected


async def test_receipts_and_ledger_paginate(api: httpx.AsyncClient, user: Tenant) -> None:
    for i in range(3):
        await wait_for_run(api, user, (await start_run(api, user, key=f"page-{i}")).json()["run_id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/api/v1/billing/receipts", params=params, headers=user.headers)).json()
        seen += [r["id"] for r in page["receipts"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 3
    entries: list[int] = []
    cursor = None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/api/v1/billing/ledger", params=params, headers=user.headers)).json()
        entries += [e["id"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(entries) == 4  # the initial top-up and three debits
    assert entries == sorted(entries, reverse=True)
    bad = await api.get("/api/v1/billing/ledger", params={"cursor": "garbage"}, headers=user.headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_cursor"


async def test_provider_error_is_retried_by_temporal_and_billed_once(
    api: httpx.AsyncClient, user: Tenant, database: Database, fake_provider: FakeProvider
) -> None:
    """LiteLLM does not retry (num_retries=0): the failed request reaches the provider once, Temporal
    retries the activity, and only the answered call is billed."""
    before = fake_provider.log.count()
    fake_provider.log.fail_next = 1
    run = await wait_for_run(api, user, (await start_run(api, user)).json()["run_id"], within=60)
    assert run["status"] == "success", run
    assert fake_provider.log.count() - before == 1  # answered calls; the failed one is not counted
    assert fake_provider.log.fail_next == 0  # the injected failure was consumed by exactly one request
    calls = await rows(
        database,
        "SELECT status, attempt FROM model_calls WHERE run_id = :r ORDER BY attempt",
        r=run["run_id"],
    )
    assert [(c["status"], c["attempt"]) for c in calls] == [("failed", 1), ("settled", 2)]
    receipts = (await api.get(f"/api/v1/runs/{run['run_id']}/charges", headers=user.headers)).json()[
        "receipts"
    ]
    assert [r["attempt"] for r in receipts] == [2]
