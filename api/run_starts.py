"""Starting a run from the API (IDEMPOTENT_RUN_START, TRIGGERS_ONLY_START_RUNS).

One transaction: claim the idempotency key, check credits, insert the run row, start the workflow,
commit. A refusal at any step (422, 402, 503) rolls everything back, so a failed request leaves no
row. Concurrent requests with one key serialize on the key's primary key; the losers return the
winner's run. The workflow's first activity retries until the row is visible, which covers the few
milliseconds between the workflow start and the commit.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError

from api.catalog import published_graph, validate_input
from api.errors import PaymentRequired, ServiceUnavailable, Unprocessable
from api.schemas import StartRunRequest
from db import events, reservations, runs
from db.accounts import Principal
from db.models import GraphRun
from db.session import Database
from runledger.config import Settings
from runledger.contracts import ids
from runledger.contracts import temporal as sa
from runledger.contracts.catalog import GraphSpec, estimate_run_credits
from runledger.contracts.errors import ErrorCode
from runledger.contracts.events import status_event
from runledger.contracts.runs import GRAPH_RUN_WORKFLOW, GraphRunInput, RunKind, RunStatus, TriggerSource
from runledger.telemetry import run_trace_context

#: A start that Temporal cannot take within this time is answered 503 and rolled back.
START_RPC_TIMEOUT = timedelta(seconds=10)


def request_hash(graph_id: str, body: StartRunRequest) -> str:
    canonical = json.dumps(
        {"graph_id": graph_id, "input": body.input, "state_key": body.state_key},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_idempotency_key(key: str | None) -> None:
    if key is None:
        return
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise Unprocessable("Idempotency-Key must be 1-255 printable characters")


async def start_api_run(
    *,
    database: Database,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    graph_id: str,
    body: StartRunRequest,
    idempotency_key: str | None,
) -> tuple[GraphRun, bool]:
    """Returns ``(run, created)``; ``created`` is False when an earlier request with the same key and
    body already started it."""
    run_id = ids.api_run_id(
        billing_account_id=principal.billing_account_id, graph_id=graph_id, idempotency_key=idempotency_key
    )
    digest = request_hash(graph_id, body)
    async with database.transaction() as session:
        # The published catalog, in the start's transaction: a refusal here has written nothing.
        spec = await published_graph(session, graph_id)
        validate_idempotency_key(idempotency_key)
        validate_input(spec, body.input)
        if idempotency_key is not None:
            claim = await runs.claim_start(
                session,
                billing_account_id=principal.billing_account_id,
                graph_id=graph_id,
                idempotency_key=idempotency_key,
                request_hash=digest,
                run_id=run_id,
            )
            if not claim.created:
                if claim.request_hash != digest:
                    raise Unprocessable(
                        "this Idempotency-Key was already used with a different request body",
                        code=ErrorCode.IDEMPOTENCY_KEY_REUSED,
                    )
                existing = await runs.get_run(session, run_id=claim.run_id)
                if existing is None:  # the FK makes this impossible; fail loudly if it ever is not
                    raise RuntimeError(f"idempotency record points at missing run {claim.run_id}")
                return existing, False
        run = await _hold_record_start(
            session,
            temporal,
            settings,
            spec,
            GraphRun(
                run_id=run_id,
                workflow_id=ids.graph_run_workflow_id(run_id),
                graph_id=graph_id,
                billing_account_id=principal.billing_account_id,
                run_kind=RunKind.USER_IMMEDIATE,
                trigger_source=TriggerSource.API,
                trigger_ref=idempotency_key,
                requested_by=principal.user_id,
                state_key=body.state_key,
                input=body.input,
                status="pending",
                trace_id=ids.langfuse_trace_id(run_id),
            ),
        )
    return run, True


async def start_replay(
    *, database: Database, temporal: Client, settings: Settings, principal: Principal, original: GraphRun
) -> GraphRun:
    """A new run with the original's graph and input (``replay_of`` links them), billed and held
    like any other start."""
    run_id = ids.replay_run_id()
    async with database.transaction() as session:
        spec = await published_graph(session, original.graph_id)
        return await _hold_record_start(
            session,
            temporal,
            settings,
            spec,
            GraphRun(
                run_id=run_id,
                workflow_id=ids.graph_run_workflow_id(run_id),
                graph_id=original.graph_id,
                billing_account_id=principal.billing_account_id,
                run_kind=RunKind.REPLAY,
                trigger_source=TriggerSource.REPLAY,
                trigger_ref=original.run_id,
                requested_by=principal.user_id,
                state_key=original.state_key,
                input=dict(original.input),
                replay_of=original.run_id,
                status="pending",
                trace_id=ids.langfuse_trace_id(run_id),
            ),
        )


async def _hold_record_start(
    session: AsyncSession, temporal: Client, settings: Settings, spec: GraphSpec, run: GraphRun
) -> GraphRun:
    """Reserve the run's estimate (402 if it is not available), record the run, start its workflow
    (503 if Temporal cannot take it) — in the caller's transaction, so a refusal leaves nothing."""
    needed = estimate_run_credits(spec, run.input, settings.preflight_credits_per_call)
    hold = await reservations.reserve(
        session, billing_account_id=run.billing_account_id, run_id=run.run_id, amount=needed
    )
    if not hold.ok:
        raise PaymentRequired(
            f"{hold.available} credits are available; this run's estimate is {needed} credits"
        )
    await runs.insert_run(session, run=run)
    await events.append(session, run_id=run.run_id, events=[status_event(RunStatus.PENDING)])
    await start_graph_workflow(temporal, settings, run)
    return run


async def start_graph_workflow(temporal: Client, settings: Settings, run: GraphRun) -> None:
    """Start the run's ``GraphRunWorkflow`` (503 if Temporal cannot take it): the last step of a
    start's transaction, so a refusal leaves no row."""
    try:
        # The StartWorkflow span opens the run's trace (id derived from run_id), which the workflow,
        # its activities and every model call continue.
        with run_trace_context(run.run_id):
            await temporal.start_workflow(
                GRAPH_RUN_WORKFLOW,
                GraphRunInput(
                    run_id=run.run_id,
                    graph_id=run.graph_id,
                    billing_account_id=run.billing_account_id,
                    run_kind=run.run_kind,
                    credit_wait_seconds=settings.credit_wait_seconds,
                ),
                id=run.workflow_id,
                task_queue=settings.temporal_task_queue,
                # A start whose transaction rolled back after Temporal took the workflow (an RPC timeout)
                # leaves a workflow waiting for its row: a retried start attaches to it; one that gave up
                # (failed) may be started again; a completed run's id is never reused.
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                rpc_timeout=START_RPC_TIMEOUT,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(sa.RUN_ID, run.run_id),
                        SearchAttributePair(sa.GRAPH_ID, run.graph_id),
                        SearchAttributePair(sa.BILLING_ACCOUNT_ID, run.billing_account_id),
                        SearchAttributePair(sa.RUN_KIND, run.run_kind),
                    ]
                ),
            )
    except RPCError as exc:
        raise ServiceUnavailable(f"Temporal is unavailable: {exc.message}") from exc
