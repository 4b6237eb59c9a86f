"""GraphRunWorkflow on a real dev server: retries that never charge twice, replay determinism,
no secrets in history, and triggers that only start runs."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from activities.runs import RunActivities
from db.session import Database
from runledger.config import Settings
from runledger.llm import LiteLLMGateway
from runledger.worker import WorkerDeps, build_worker
from tests.conftest import api_client
from tests.db.queries import rows
from tests.fakes.openai_server import FakeProvider
from tests.helpers import ADMIN_TOKEN, Tenant, create_user, eventually, start_run, wait_for_run
from tests.lost_workers import LoseWorkerAfterCharging, LoseWorkerAfterEnding
from workflows.registry import WORKFLOWS

HISTORIES = Path(__file__).with_name("histories")


def _started_attempts(history: WorkflowHistory) -> list[int]:
    """The attempt of each activity start in ``history`` (Temporal records the one that completed)."""
    return [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
    ]


@asynccontextmanager
async def _stack_losing_a_worker(
    settings: Settings,
    database: Database,
    client: Client,
    gateway: LiteLLMGateway,
    activities_cls: type[RunActivities],
) -> AsyncIterator[tuple[httpx.AsyncClient, Tenant]]:
    """A worker of ``activities_cls`` on a queue of its own, its API, and a funded user."""
    queue_settings = _own_queue(settings)
    deps = WorkerDeps(database=database, gateway=gateway)
    async with (
        build_worker(client, queue_settings, deps, activities_cls=activities_cls),
        api_client(queue_settings, database, client) as api,
    ):
        yield api, await create_user(api, credits=5_000_000)


def _own_queue(settings: Settings) -> Settings:
    return settings.model_copy(update={"temporal_task_queue": f"test-{uuid.uuid4()}"})


async def test_IDEMPOTENT_CHARGES_retried_execute_activity_never_charges_twice(
    settings: Settings,
    database: Database,
    client: Client,
    gateway: LiteLLMGateway,
    fake_provider: FakeProvider,
) -> None:
    async with _stack_losing_a_worker(settings, database, client, gateway, LoseWorkerAfterCharging) as (
        api,
        user,
    ):
        calls_before = set(fake_provider.log.ids())
        started = await start_run(api, user, graph_id="langgraph:brief")
        run = await wait_for_run(api, user, started.json()["run_id"], within=60)
        me = (await api.get("/api/v1/me", headers=user.headers)).json()
        receipts = (await api.get(f"/api/v1/runs/{run['run_id']}/charges", headers=user.headers)).json()[
            "receipts"
        ]
        handle = client.get_workflow_handle(started.json()["workflow_id"])
        result = await handle.result()

    assert run["status"] == "success", run
    assert result["status"] == "success"
    provider_calls = set(fake_provider.log.ids()) - calls_before
    assert len(provider_calls) == 3  # the retry asked the provider nothing new
    assert {r["provider_response_id"] for r in receipts} == provider_calls
    assert {r["attempt"] for r in receipts} == {1}
    assert (
        5_000_000 - me["balance_credits"]
        == sum(r["charged_credits"] for r in receipts)
        == run["cost_credits"]
    )
    history = await handle.fetch_history()
    # Temporal records the attempt that completed: proof a retry happened.
    assert _started_attempts(history) == [2]
    calls = await rows(database, "SELECT status, attempt FROM model_calls WHERE run_id = :r", r=run["run_id"])
    assert sorted((c["status"], c["attempt"]) for c in calls) == [("settled", 1)] * 3


async def test_an_execution_retried_after_it_ended_the_run_runs_nothing_and_ends_nothing_twice(
    settings: Settings,
    database: Database,
    client: Client,
    gateway: LiteLLMGateway,
    fake_provider: FakeProvider,
) -> None:
    async with _stack_losing_a_worker(settings, database, client, gateway, LoseWorkerAfterEnding) as (
        api,
        user,
    ):
        calls_before = set(fake_provider.log.ids())
        started = await start_run(api, user, graph_id="langgraph:brief")
        handle = client.get_workflow_handle(started.json()["workflow_id"])
        result = await handle.result()
        run = await wait_for_run(api, user, started.json()["run_id"], within=60)

    assert run["status"] == "success", run
    assert (result["status"], result["model_calls"], result["charged_credits"]) == (
        "success",
        3,
        run["cost_credits"],
    )
    assert len(set(fake_provider.log.ids()) - calls_before) == 3
    history = await handle.fetch_history()
    assert _started_attempts(history) == [2]
    # The retry wrote nothing: one running, one success, one done; no finalize step after it.
    events = await rows(
        database, "SELECT event, data FROM run_events WHERE run_id = :r ORDER BY seq", r=run["run_id"]
    )
    statuses = [e["data"]["status"] for e in events if e["event"] == "status"]
    assert statuses == ["pending", "running", "success"]
    assert [e["event"] for e in events].count("done") == 1
    assert not [e for e in history.events if e.HasField("marker_recorded_event_attributes")]


async def _finished_history(
    api: httpx.AsyncClient, client: Client, user: Tenant, graph_id: str
) -> WorkflowHistory:
    started = await start_run(api, user, graph_id=graph_id)
    run = await wait_for_run(api, user, started.json()["run_id"])
    assert run["status"] == "success"
    return await client.get_workflow_handle(started.json()["workflow_id"]).fetch_history()


@pytest.mark.usefixtures("worker")
async def test_TEMPORAL_DETERMINISM_replay_recorded_histories(
    api: httpx.AsyncClient, client: Client, user: Tenant
) -> None:
    replayer = Replayer(workflows=WORKFLOWS)
    for graph_id in ("langgraph:poet", "langgraph:brief"):
        history = await _finished_history(api, client, user, graph_id)
        await replayer.replay_workflow(history)
    # Histories written by released versions must keep replaying against today's code.
    files = sorted(HISTORIES.glob("*.json"))
    assert files, "no recorded histories"
    for path in files:
        await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))


@pytest.mark.usefixtures("worker")
async def test_NO_SECRETS_IN_HISTORY(
    api: httpx.AsyncClient, client: Client, user: Tenant, settings: Settings
) -> None:
    history = await _finished_history(api, client, user, "langgraph:poet")
    dumped = json.dumps(history.to_json_dict())
    assert settings.model_api_key is not None
    for secret in (
        user.api_key,
        ADMIN_TOKEN,
        settings.model_api_key.get_secret_value(),
        str(settings.database_url),
    ):
        assert secret not in dumped


async def test_TRIGGERS_ONLY_START_RUNS_api_starts_and_worker_executes(
    settings: Settings,
    database: Database,
    client: Client,
    gateway: LiteLLMGateway,
    fake_provider: FakeProvider,
) -> None:
    queue_settings = _own_queue(settings)
    async with api_client(queue_settings, database, client) as api:
        user = await create_user(api, credits=1_000_000)
        calls_before = fake_provider.log.count()
        started = await start_run(api, user)
        assert started.status_code == 202
        assert started.json()["status"] == "pending"
        detail = (await api.get(f"/api/v1/runs/{started.json()['run_id']}", headers=user.headers)).json()
        assert detail["status"] == "pending"
        assert fake_provider.log.count() == calls_before  # nothing executed without a worker
        async with build_worker(client, queue_settings, WorkerDeps(database=database, gateway=gateway)):
            run = await wait_for_run(api, user, started.json()["run_id"])
    assert run["status"] == "success"
    assert fake_provider.log.count() == calls_before + 1


async def test_cancel_ends_the_run_cancelled_without_charges(
    settings: Settings, database: Database, client: Client, gateway: LiteLLMGateway
) -> None:
    queue_settings = _own_queue(settings)
    async with api_client(queue_settings, database, client) as api:
        user = await create_user(api, credits=1_000_000)
        started = await start_run(api, user)
        cancel = await api.post(f"/api/v1/runs/{started.json()['run_id']}/cancel", headers=user.headers)
        assert cancel.status_code == 202
        async with build_worker(client, queue_settings, WorkerDeps(database=database, gateway=gateway)):
            run = await wait_for_run(api, user, started.json()["run_id"])
        assert run["status"] == "cancelled"
        assert run["error_code"] == "run_cancelled"
        charges = (await api.get(f"/api/v1/runs/{run['run_id']}/charges", headers=user.headers)).json()
        assert charges["receipts"] == []
        again = await api.post(f"/api/v1/runs/{run['run_id']}/cancel", headers=user.headers)
        assert again.status_code == 202
        assert again.json()["status"] == "cancelled"


@pytest.mark.usefixtures("worker")
async def test_runs_are_found_in_temporal_by_search_attributes(
    api: httpx.AsyncClient, client: Client, user: Tenant
) -> None:
    started = await start_run(api, user)
    run = await wait_for_run(api, user, started.json()["run_id"])

    expected = [f"graph-run:{run['run_id']}"]
    for query in (
        f"GraphRunId = '{run['run_id']}'",
        f"BillingAccountId = '{user.billing_account_id}' AND GraphId = 'langgraph:poet'",
        f"GraphRunId = '{run['run_id']}' AND RunKind = 'user_immediate'",
    ):

        async def find(query: str = query) -> list[str]:
            return [wf.id async for wf in client.list_workflows(query)]

        # Visibility is eventually consistent on the dev server.
        assert await eventually(find, until=lambda ids: ids == expected) == expected


async def test_cancel_during_a_model_call_ends_cancelled(
    api: httpx.AsyncClient, user: Tenant, fake_provider: FakeProvider, worker: None
) -> None:
    import threading

    from tests.helpers import eventually

    gate = threading.Event()
    fake_provider.log.gate = gate
    try:
        run_id = (await start_run(api, user, graph_id="langgraph:brief")).json()["run_id"]

        async def waiting() -> int:
            return fake_provider.log.waiting

        await eventually(waiting, until=lambda n: n >= 1)
        assert (await api.post(f"/api/v1/runs/{run_id}/cancel", headers=user.headers)).status_code == 202
        run = await wait_for_run(api, user, run_id)
    finally:
        fake_provider.log.gate = None
        gate.set()
    assert run["status"] == "cancelled", run
    assert run["error_code"] == "run_cancelled"


@pytest.mark.parametrize("authorize_in_execute", [True, False], ids=["today", "earlier-release"])
async def test_retried_start_attaches_to_a_workflow_whose_first_start_rolled_back(
    api: httpx.AsyncClient,
    user: Tenant,
    client: Client,
    settings: Settings,
    worker: None,
    authorize_in_execute: bool,
) -> None:
    """A workflow started for a row that is not there (yet) waits for it: the client's retry with
    the same key records the run and attaches to that workflow instead of failing on the taken id.
    Both the execute step's preflight and an earlier release's authorize step wait."""
    from runledger.contracts import ids
    from runledger.contracts.runs import GRAPH_RUN_WORKFLOW, GraphRunInput

    key = f"lost-{authorize_in_execute}"
    run_id = ids.api_run_id(
        billing_account_id=user.billing_account_id, graph_id="langgraph:poet", idempotency_key=key
    )
    orphan = await client.start_workflow(
        GRAPH_RUN_WORKFLOW,
        GraphRunInput(
            run_id=run_id,
            graph_id="langgraph:poet",
            billing_account_id=user.billing_account_id,
            authorize_in_execute=authorize_in_execute,
        ),
        id=ids.graph_run_workflow_id(run_id),
        task_queue=settings.temporal_task_queue,
    )
    retried = await start_run(api, user, key=key)
    assert retried.status_code == 202, retried.text
    assert retried.json()["run_id"] == run_id
    run = await wait_for_run(api, user, run_id)
    assert run["status"] == "success"
    assert (await orphan.describe()).run_id == orphan.result_run_id  # the same workflow run finished it


@pytest.mark.usefixtures("worker")
async def test_a_workflow_whose_run_is_never_recorded_fails_run_not_found_and_frees_its_id(
    user: Tenant, client: Client, settings: Settings
) -> None:
    """The execute step's preflight gives up on a row that never comes (a start undone after
    Temporal took it): the workflow fails ``run_not_found`` within seconds, so a later start may
    take the id again (ALLOW_DUPLICATE_FAILED_ONLY)."""
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import ApplicationError

    from runledger.contracts import ids
    from runledger.contracts.runs import GRAPH_RUN_WORKFLOW, GraphRunInput

    run_id = str(uuid.uuid4())
    handle = await client.start_workflow(
        GRAPH_RUN_WORKFLOW,
        GraphRunInput(
            run_id=run_id,
            graph_id="langgraph:poet",
            billing_account_id=user.billing_account_id,
            authorize_in_execute=True,
        ),
        id=ids.graph_run_workflow_id(run_id),
        task_queue=settings.temporal_task_queue,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "run_not_found"
