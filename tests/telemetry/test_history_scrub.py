"""NO_SECRETS_IN_HISTORY for error text: a failure the worker records in Temporal history (message,
stack trace, causes), and the error messages stored on run rows and run events, pass the same
scrubber as Langfuse payloads (``runledger.contracts.scrub``): API keys, bearer tokens, credentials
in URLs and the process's own configured secrets."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from db import events, runs
from db.models import GraphRun
from db.session import Database
from runledger.config import Settings
from runledger.contracts import ids
from runledger.contracts.runs import RunKind, RunStatus
from runledger.contracts.scrub import Scrubber
from runledger.llm import LiteLLMGateway
from runledger.telemetry import ScrubbingFailureConverter, scrubbing_client
from runledger.worker import WorkerDeps, build_worker
from tests.db.queries import rows, scalar
from tests.helpers import Tenant

KNOWN = "configured-secret-4711"
LEAKY = (
    "provider said: Authorization: Bearer abcdefghijklmnop1234 for "
    "https://user:hunter2@models.example/v1 with key rl_ABCDEFGHIJKLMNOPQRSTUV and sk-live1234567890 "
    f"and {KNOWN}"
)
SECRETS = ("abcdefghijklmnop1234", "hunter2", "rl_ABCDEFGHIJKLMNOPQRSTUV", "sk-live1234567890", KNOWN)


@activity.defn(name="leaky_activity")
async def leaky_activity() -> None:
    try:
        raise ValueError(LEAKY)  # the cause: its message and traceback go into history too
    except ValueError as exc:
        raise ApplicationError(f"graph failed: {LEAKY}", type="graph_failed", non_retryable=True) from exc


@workflow.defn(name="LeakyWorkflow")
class LeakyWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            "leaky_activity",
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def test_failures_in_temporal_history_are_scrubbed_NO_SECRETS_IN_HISTORY(client: Client) -> None:
    scrubbed = scrubbing_client(client, Scrubber([KNOWN]))
    queue = f"scrub-{uuid.uuid4()}"
    async with Worker(
        scrubbed,
        task_queue=queue,
        workflows=[LeakyWorkflow],
        activities=[leaky_activity],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await client.start_workflow(LeakyWorkflow.run, id=f"leaky-{uuid.uuid4()}", task_queue=queue)
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    history = (await handle.fetch_history()).to_json()
    assert "graph failed" in history  # the message is kept, only its secrets go
    assert "[REDACTED]" in history
    for secret in SECRETS:
        assert secret not in history, secret


async def test_the_production_worker_records_scrubbed_failures(
    client: Client, settings: Settings, database: Database, gateway: LiteLLMGateway
) -> None:
    # A task queue of its own: the worker is built, never run, and Temporal's core keeps it
    # registered, so on the session's queue it would refuse the session's worker fixture later.
    own = settings.model_copy(update={"temporal_task_queue": f"test-{uuid.uuid4()}"})
    worker = build_worker(client, own, WorkerDeps(database=database, gateway=gateway))
    converter = worker.client.data_converter.failure_converter
    assert isinstance(converter, ScrubbingFailureConverter)
    # It knows this process's configured secrets (the model key, the admin token).
    assert "sk-fake" not in converter.scrubber.text("key sk-fake here")
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() not in converter.scrubber.text(
        f"token {settings.admin_token.get_secret_value()}"
    )


async def test_error_messages_on_run_rows_and_events_are_scrubbed(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    run_id = str(uuid.uuid4())
    async with database.transaction() as session:
        session.add(
            GraphRun(
                run_id=run_id,
                workflow_id=ids.graph_run_workflow_id(run_id),
                graph_id="langgraph:poet",
                billing_account_id=user.billing_account_id,
                run_kind=RunKind.USER_IMMEDIATE,
                trigger_source="api",
                requested_by=user.user_id,
                input={"topic": "x"},
                status=RunStatus.PENDING,
                trace_id=ids.langfuse_trace_id(run_id),
            ),
        )
    async with database.transaction() as session:
        # As finalize writes a failed run: its row and its terminal event.
        await runs.transition(
            session, run_id=run_id, to="error", values={"error_code": "graph_failed", "error_message": LEAKY}
        )
        await events.append(session, run_id=run_id, events=[("error", {"code": "x", "message": LEAKY})])
    stored_event = (
        await rows(database, "SELECT data FROM run_events WHERE run_id = :r AND event = 'error'", r=run_id)
    )[-1]["data"]["message"]
    stored_row = await scalar(database, "SELECT error_message FROM graph_runs WHERE run_id = :r", r=run_id)
    assert (await api.get(f"/api/v1/runs/{run_id}", headers=user.headers)).json()[
        "error_message"
    ] == stored_row
    for stored in (stored_event, stored_row):
        assert "[REDACTED]" in stored
        for secret in SECRETS[:-1]:  # patterns only: the db layer knows no configured secrets
            assert secret not in stored, (secret, stored)
