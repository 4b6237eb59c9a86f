"""BOUNDED_OVERSPEND: before each model call its maximum cost (LiteLLM's price x (input tokens +
``max_tokens``)) is reserved under the account's lock, with the grant's cap checked in the same
transaction, and settled to the actual cost after. Concurrent runs of an expensive model on a
small balance never take it below zero, and a grant's cap is never exceeded."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from activities.metering import CreditsExhaustedError, GrantDeniedError, LedgerMeter
from db import grants, ledger, ledger_reads, runs
from db.models import GraphRun
from db.session import Database
from runledger.config import Settings
from runledger.contracts import ids
from runledger.llm import LiteLLMGateway, ModelRequest, model_price
from runledger.projects import load_registry
from runledger.worker import WorkerDeps, build_worker, publish_catalog
from tests.conftest import api_client
from tests.db.queries import rows, scalar
from tests.fakes.openai_server import FakeProvider
from tests.helpers import Tenant, create_user, eventually, start_run, wait_for_run

#: A model LiteLLM does not know, registered with a price (SPEC §3): $10/M input, $30/M output.
EXPENSIVE = "openai/rl-test-expensive"
REGISTRY = {
    EXPENSIVE: {
        "input_cost_per_token": 1e-5,
        "output_cost_per_token": 3e-5,
        "litellm_provider": "openai",
        "mode": "chat",
        "max_tokens": 4096,
    }
}
MAX_TOKENS = 1_000
#: What the fake provider reports each answer used: most of the requested max_tokens.
ANSWER_TOKENS = 900


@pytest.fixture
def expensive_gateway(settings: Settings) -> LiteLLMGateway:
    return LiteLLMGateway(api_base=settings.model_api_base, api_key="sk-fake", model_registry=REGISTRY)


@pytest.fixture
def long_answers(fake_provider: FakeProvider) -> Iterator[None]:
    fake_provider.log.completion_tokens = ANSWER_TOKENS
    yield
    fake_provider.log.completion_tokens = None


async def _running_run(database: Database, user: Tenant, grant_id: str | None = None) -> str:
    run_id = str(uuid.uuid4())
    async with database.transaction() as session:
        session.add(
            GraphRun(
                run_id=run_id,
                workflow_id=ids.graph_run_workflow_id(run_id),
                graph_id="langgraph:poet",
                billing_account_id=user.billing_account_id,
                run_kind="system_scheduled" if grant_id else "user_immediate",
                trigger_source="temporal_schedule" if grant_id else "api",
                requested_by=user.user_id,
                input={"topic": "x"},
                grant_id=grant_id,
                trace_id=ids.langfuse_trace_id(run_id),
            )
        )
    async with database.transaction() as session:
        assert await runs.transition(session, run_id=run_id, to="running")
    return run_id


def _meter(
    database: Database, gateway: LiteLLMGateway, user: Tenant, run_id: str, grant_id: str | None
) -> LedgerMeter:
    return LedgerMeter(
        database=database,
        run_id=run_id,
        graph_id="langgraph:poet",
        billing_account_id=user.billing_account_id,
        attempt=1,
        markup=Decimal(2),
        bound=gateway.call_bound,
        grant_id=grant_id,
    )


REQUEST = ModelRequest(
    model=EXPENSIVE,
    messages=({"role": "user", "content": "Write a long poem about the sea"},),
    max_tokens=MAX_TOKENS,
)


async def _concurrent_calls(
    database: Database,
    gateway: LiteLLMGateway,
    fake_provider: FakeProvider,
    user: Tenant,
    n: int,
    grant_id: str | None,
) -> list[BaseException | None]:
    """``n`` runs each make one call at once; all that get past the reservation wait at the
    provider until every run has either reached it or been refused, so none sees another's charge."""
    run_ids = [await _running_run(database, user, grant_id) for _ in range(n)]
    gate = threading.Event()
    fake_provider.log.gate = gate
    outcomes: list[BaseException | None] = [None] * n

    async def one(i: int) -> None:
        try:
            await _meter(database, gateway, user, run_ids[i], grant_id).call(
                "poem:0", REQUEST, gateway.invoke
            )
        except (CreditsExhaustedError, GrantDeniedError) as exc:
            outcomes[i] = exc

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    try:
        await eventually(
            lambda: asyncio.sleep(0, fake_provider.log.waiting + sum(o is not None for o in outcomes)),
            until=lambda settled: settled == n,
            within=60,
        )
    finally:
        gate.set()
        fake_provider.log.gate = None
    await asyncio.gather(*tasks)
    return outcomes


@pytest.mark.usefixtures("long_answers")
async def test_BOUNDED_OVERSPEND_concurrent_calls_never_take_the_balance_below_zero(
    api: httpx.AsyncClient, database: Database, expensive_gateway: LiteLLMGateway, fake_provider: FakeProvider
) -> None:
    one_call = expensive_gateway.call_bound(REQUEST).max_credits(Decimal(2))
    user = await create_user(api, credits=2 * one_call + one_call // 2)  # room for two calls' maximum
    outcomes = await _concurrent_calls(database, expensive_gateway, fake_provider, user, 6, None)
    assert sum(o is None for o in outcomes) == 2
    assert all(isinstance(o, CreditsExhaustedError) for o in outcomes if o is not None)
    async with database.transaction() as session:
        balance = await ledger.get_balance(session, billing_account_id=user.billing_account_id)
        assert balance == await ledger_reads.ledger_sum(session, billing_account_id=user.billing_account_id)
    assert balance >= 0
    receipts = await rows(
        database,
        "SELECT charged_credits FROM charge_receipts WHERE billing_account_id = :a",
        a=user.billing_account_id,
    )
    assert len(receipts) == 2
    # Settled to the actual cost: each charge is what the provider reported, below its reservation.
    assert all(0 < r["charged_credits"] <= one_call for r in receipts)
    assert (
        await scalar(
            database,
            "SELECT count(*) FROM model_calls c JOIN graph_runs r USING (run_id)"
            " WHERE r.billing_account_id = :a AND c.status = 'pending'",
            a=user.billing_account_id,
        )
        == 0
    )


@pytest.mark.usefixtures("long_answers")
async def test_BOUNDED_OVERSPEND_a_grants_cap_is_never_exceeded_by_concurrent_runs(
    api: httpx.AsyncClient, database: Database, expensive_gateway: LiteLLMGateway, fake_provider: FakeProvider
) -> None:
    one_call = expensive_gateway.call_bound(REQUEST).max_credits(Decimal(2))
    user = await create_user(api, credits=100 * one_call)  # the account could pay for all of them
    cap = 3 * one_call + one_call // 2
    async with database.transaction() as session:
        grant = await grants.create_grant(
            session,
            user_id=user.user_id,
            billing_account_id=user.billing_account_id,
            scopes=["graph:execute:*"],
            expires_at=None,
            max_credits=cap,
        )
        grant_id = grant.id
    outcomes = await _concurrent_calls(database, expensive_gateway, fake_provider, user, 8, grant_id)
    assert sum(o is None for o in outcomes) == 3
    assert all(isinstance(o, GrantDeniedError) for o in outcomes if o is not None)
    spent = await scalar(database, "SELECT spent_credits FROM execution_grants WHERE id = :g", g=grant_id)
    charged = await scalar(
        database,
        "SELECT coalesce(sum(charged_credits), 0) FROM charge_receipts c JOIN graph_runs r USING (run_id)"
        " WHERE r.grant_id = :g",
        g=grant_id,
    )
    assert 0 < spent == charged <= cap


@pytest.mark.usefixtures("long_answers")
async def test_BOUNDED_OVERSPEND_concurrent_api_runs_of_an_expensive_model_on_a_small_balance(
    settings: Settings, database: Database, client: Client, expensive_gateway: LiteLLMGateway
) -> None:
    """End to end: the API's preflight prices the run by the published LiteLLM price, the worker
    reserves each call; sixteen concurrent starts on a balance for two runs (without the preflight
    and the reservations, their answers would cost more than the balance)."""
    own = settings.model_copy(
        update={
            "temporal_task_queue": f"test-{uuid.uuid4()}",
            "default_model": EXPENSIVE,
            "model_registry": REGISTRY,
        }
    )
    # This worker's default model is the expensive one (the session's is put back after).
    await publish_catalog(database, load_registry(), own.default_model)
    try:
        async with database.transaction() as session:
            from db import catalog

            poet = await catalog.current_graph(session, "langgraph:poet")
        assert poet is not None
        from runledger.contracts.catalog import estimate_run_credits

        per_run = estimate_run_credits(poet, {"topic": "the sea"}, model_price(EXPENSIVE), own.markup)
        async with (
            build_worker(client, own, WorkerDeps(database=database, gateway=expensive_gateway)),
            api_client(own, database, client) as api,
        ):
            user = await create_user(api, credits=2 * per_run + per_run // 2)
            started = await asyncio.gather(*(start_run(api, user, key=f"dear-{i}") for i in range(16)))
            codes = sorted(r.status_code for r in started)
            assert codes == [202] * 2 + [402] * 14
            finished = [
                await wait_for_run(api, user, r.json()["run_id"], within=60)
                for r in started
                if r.status_code == 202
            ]
            me: dict[str, Any] = (await api.get("/api/v1/me", headers=user.headers)).json()
    finally:
        await publish_catalog(database, load_registry(), settings.default_model)
    assert all(run["status"] == "success" for run in finished), finished
    assert all(run["cost_credits"] > 0 for run in finished)
    assert me["balance_credits"] >= 0
    assert me["reserved_credits"] == 0


@pytest.mark.usefixtures("long_answers")
async def test_BOUNDED_OVERSPEND_parallel_calls_of_one_run_each_need_their_own_reservation(
    api: httpx.AsyncClient, database: Database, expensive_gateway: LiteLLMGateway, fake_provider: FakeProvider
) -> None:
    """Two nodes of one run call at once: the second must be covered on top of the first's
    reservation (the run's calls in flight), and both charges then settle without a deadlock."""
    one_call = expensive_gateway.call_bound(REQUEST).max_credits(Decimal(2))
    user = await create_user(api, credits=2 * one_call - 1)  # not two maximums at once
    run_id = await _running_run(database, user)
    meter = _meter(database, expensive_gateway, user, run_id, None)
    gate = threading.Event()
    fake_provider.log.gate = gate
    outcomes: dict[str, BaseException | None] = {}

    async def one(key: str) -> None:
        try:
            await meter.call(key, REQUEST, expensive_gateway.invoke)
            outcomes[key] = None
        except CreditsExhaustedError as exc:
            outcomes[key] = exc

    tasks = [asyncio.create_task(one(key)) for key in ("left:1.0", "right:1.0")]
    try:
        await eventually(
            lambda: asyncio.sleep(0, fake_provider.log.waiting + len(outcomes)),
            until=lambda n: n == 2,
            within=60,
        )
    finally:
        gate.set()
        fake_provider.log.gate = None
    await asyncio.gather(*tasks)
    assert sorted(o is None for o in outcomes.values()) == [False, True]
    # The refused one now fits: the first call settled to its actual cost, below its reservation.
    refused = next(key for key, o in outcomes.items() if o is not None)
    await meter.call(refused, REQUEST, expensive_gateway.invoke)
    async with database.transaction() as session:
        balance = await ledger.get_balance(session, billing_account_id=user.billing_account_id)
    assert balance >= 0
    assert len(await rows(database, "SELECT id FROM charge_receipts WHERE run_id = :r", r=run_id)) == 2
