"""NO_SILENT_UNBILLED_CALLS under broken streams: a call refused before anything arrived is
``failed`` and unbilled; a call that got output is charged for what arrived (LiteLLM's counting and
``completion_cost``) or, when that cannot be known, left ``unsettled`` with its reason, which
reconciliation flags. The fake provider breaks the stream (``ProviderLog.breaks``); Temporal
retries the run, which then succeeds."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import litellm
import pytest

from activities.reconcile import reconcile_once
from db.session import Database
from runledger.contracts.money import charged_credits
from tests.db.queries import rows
from tests.fakes.openai_server import FakeProvider
from tests.helpers import ADMIN, Tenant, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")


async def _broken_run(
    api: httpx.AsyncClient, database: Database, user: Tenant, fake_provider: FakeProvider, mode: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    fake_provider.log.breaks.append(mode)
    run = await wait_for_run(api, user, (await start_run(api, user)).json()["run_id"], within=90)
    assert fake_provider.log.breaks == []
    calls = await _calls(database, run["run_id"])
    receipts = (await api.get(f"/api/v1/runs/{run['run_id']}/charges", headers=user.headers)).json()[
        "receipts"
    ]
    return run, calls, sorted(receipts, key=lambda r: r["attempt"])


async def _calls(database: Database, run_id: str) -> list[dict[str, Any]]:
    return await rows(
        database,
        "SELECT attempt, status, error_message, provider_response_id, usage_unit_id"
        " FROM model_calls WHERE run_id = :r ORDER BY attempt",
        r=run_id,
    )


async def test_a_call_refused_before_anything_arrived_is_failed_and_unbilled(
    api: httpx.AsyncClient, database: Database, user: Tenant, fake_provider: FakeProvider
) -> None:
    run, calls, receipts = await _broken_run(api, database, user, fake_provider, "refuse")
    assert run["status"] == "success", run
    assert [(c["attempt"], c["status"]) for c in calls] == [(1, "failed"), (2, "settled")]
    assert "injected refusal" in calls[0]["error_message"]
    assert [r["attempt"] for r in receipts] == [2]


@pytest.mark.parametrize(("mode", "words"), [("disconnect", 3), ("garbage", 2)])
async def test_NO_SILENT_UNBILLED_CALLS_a_stream_broken_mid_answer_is_charged_for_what_arrived(
    api: httpx.AsyncClient,
    database: Database,
    user: Tenant,
    fake_provider: FakeProvider,
    mode: str,
    words: int,
) -> None:
    before = (await api.get("/api/v1/me", headers=user.headers)).json()["balance_credits"]
    run, calls, receipts = await _broken_run(api, database, user, fake_provider, mode)
    assert run["status"] == "success", run
    assert [(c["attempt"], c["status"]) for c in calls] == [(1, "partial"), (2, "settled")]
    broken = fake_provider.log.broken[-1]
    assert broken["words_sent"] == words
    partial, whole = receipts
    assert partial["attempt"] == 1
    assert whole["attempt"] == 2
    assert partial["provider_response_id"] == broken["id"] == calls[0]["provider_response_id"]
    # Usage is what arrived, as LiteLLM counts it, priced by LiteLLM.
    text = " ".join(["A", "fake", "answer", "to"][:words])
    assert partial["tokens_out"] == litellm.token_counter(
        model="openai/gpt-4o-mini", text=text, count_response_tokens=True
    )
    assert partial["tokens_in"] > 0
    prompt_cost, completion_cost = litellm.cost_per_token(
        model="openai/gpt-4o-mini",
        prompt_tokens=partial["tokens_in"],
        completion_tokens=partial["tokens_out"],
    )
    assert Decimal(partial["cost_usd"]) == pytest.approx(Decimal(str(prompt_cost + completion_cost)))
    assert partial["charged_credits"] == charged_credits(
        Decimal(partial["cost_usd"]), Decimal(partial["markup"])
    )
    # The retry paid for its own whole answer; the partial one is never replayed as the answer.
    assert run["output"]["poem"].startswith("A fake answer to")
    assert partial["usage_unit_id"] == whole["usage_unit_id"]  # one call, two provider attempts
    after = (await api.get("/api/v1/me", headers=user.headers)).json()["balance_credits"]
    assert before - after == partial["charged_credits"] + whole["charged_credits"] == run["cost_credits"]


async def test_NO_SILENT_UNBILLED_CALLS_a_stream_broken_before_any_output_is_unsettled_then_flagged(
    api: httpx.AsyncClient, user: Tenant, database: Database, fake_provider: FakeProvider
) -> None:
    run, calls, receipts = await _broken_run(api, database, user, fake_provider, "drop")
    assert run["status"] == "success", run
    assert [(c["attempt"], c["status"]) for c in calls] == [(1, "unsettled"), (2, "settled")]
    assert "before any output" in calls[0]["error_message"]
    assert [r["attempt"] for r in receipts] == [2]

    result = await reconcile_once(database, threshold_seconds=3600)
    assert result.flagged_calls >= 1
    calls = await _calls(database, run["run_id"])
    assert [c["status"] for c in calls] == ["flagged", "settled"]
    assert "before any output" in calls[0]["error_message"]
    report = (await api.get("/api/v1/billing/reconciliation", headers=ADMIN)).json()
    flagged = {c["run_id"]: c for c in report["details"]["flagged_calls"]}
    assert "before any output" in flagged[run["run_id"]]["reason"]
    assert run["run_id"] in {c["run_id"] for c in report["details"]["open_flags"]}
