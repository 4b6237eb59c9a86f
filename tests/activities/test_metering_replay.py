"""The meter's replay on real Postgres (NO_SILENT_UNBILLED_CALLS, IDEMPOTENT_CHARGES): a settled call
is answered from its record on a retried execution only when the request is the same one (its
stored request hash); a different request under the same call key is a new call, billed once."""

from __future__ import annotations

from decimal import Decimal

import httpx

from activities.metering import LedgerMeter
from db import runs
from db.session import Database
from runledger.contracts.runs import RunStatus
from runledger.llm import DeltaSink, LiteLLMGateway, ModelRequest, ModelResponse
from tests.db.builders import insert_run
from tests.db.queries import rows
from tests.helpers import create_user


def _request(text: str) -> ModelRequest:
    return ModelRequest(model="openai/gpt-4o-mini", messages=({"role": "user", "content": text},))


class Provider:
    def __init__(self) -> None:
        self.calls: list[ModelRequest] = []

    async def __call__(self, request: ModelRequest, on_delta: DeltaSink | None) -> ModelResponse:
        self.calls.append(request)
        return ModelResponse(
            text=f"answer {len(self.calls)}",
            provider_response_id=f"resp-{len(self.calls)}",
            model=request.model,
            provider="openai",
            tokens_in=3,
            tokens_out=4,
            cost_usd=Decimal("0.0001"),
        )


async def test_replay_needs_the_same_request_else_it_is_a_new_call(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=5_000_000)
    run_id = await insert_run(database, user.billing_account_id, user.user_id)
    async with database.transaction() as session:
        await runs.transition(session, run_id=run_id, to=RunStatus.RUNNING)

    def meter(attempt: int) -> LedgerMeter:
        return LedgerMeter(
            database=database,
            run_id=run_id,
            graph_id="langgraph:poet",
            billing_account_id=user.billing_account_id,
            attempt=attempt,
            markup=Decimal(2),
            bound=LiteLLMGateway().call_bound,
        )

    provider = Provider()
    first = await meter(1).call("node:0", _request("same"), provider)
    retry = meter(2)
    replayed = await retry.call("node:0", _request("same"), provider)
    assert replayed == first  # the paid answer, not a second call
    assert len(provider.calls) == 1
    other = await retry.call("node:0", _request("different"), provider)
    assert len(provider.calls) == 2  # never answered with the other request's record
    assert other.text == "answer 2"
    assert (retry.replayed, retry.calls) == (1, 1)
    again = await meter(3).call("node:0", _request("different"), provider)
    assert again == other  # and that new call is itself replayed on the next retry
    receipts = await rows(
        database, "SELECT provider_response_id FROM charge_receipts WHERE run_id = :r", r=run_id
    )
    assert sorted(r["provider_response_id"] for r in receipts) == ["resp-1", "resp-2"]
    keys = await rows(
        database, "SELECT call_key FROM model_calls WHERE run_id = :r AND status = 'settled'", r=run_id
    )
    assert sorted(k["call_key"] for k in keys) == [
        "node:0",
        f"node:0@{_request('different').fingerprint()[:16]}",
    ]
