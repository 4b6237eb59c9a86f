"""Starting a run from the API (IDEMPOTENT_RUN_START, TRIGGERS_ONLY_START_RUNS).

First the published graph and its model's price (one statement), then one transaction: claim the
idempotency key, reserve the run's credits (402 if they are not available), insert the run row and
its ``pending`` event; commit. Only then is the workflow started,
outside any transaction, so no row lock and no database connection is held across the Temporal RPC
(one hot account's starts do not serialize on it, and a slow Temporal cannot stall that account's
charges). Concurrent requests with one key serialize on the key's primary key; the losers return
the winner's run.

When Temporal cannot take the start (503):

- with an ``Idempotency-Key``, the run stays recorded ``pending`` with its hold: the client's retry
  with the same key returns the same run and starts its workflow if it is missing, and the run
  sweeper of the reconciliation pass starts any API run left ``pending`` without a workflow;
- without a key (a client cannot retry *that* run), the start is undone in a compensating
  transaction — run row, hold and event deleted while the run is still ``pending`` — so the failed
  request leaves nothing. If the row is no longer pending, the workflow did take it (the RPC failed
  after the server accepted it) and the run is answered as started.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from api.catalog import published_graph, published_graph_priced, validate_input
from api.errors import Conflict, NotFound, PaymentRequired, ServiceUnavailable, Unprocessable
from api.notify_urls import check_notify_url
from api.params import CANONICAL_UUID
from api.schemas import ReplayRequest, StartRunRequest
from db import connections, events, lifecycle, preflight, prices, runs
from db.accounts import Principal
from db.models import GraphRun
from db.session import Database
from runledger import launch
from runledger.config import Settings
from runledger.contracts import ids
from runledger.contracts.catalog import GraphSpec, estimate_replay_credits, estimate_run_credits
from runledger.contracts.errors import ErrorCode
from runledger.contracts.events import status_event
from runledger.contracts.money import ModelPrice
from runledger.contracts.runs import ON_THREAD_STATUSES, RunKind, RunStatus, TriggerSource


def request_hash(graph_id: str, body: StartRunRequest) -> str:
    fields: dict[str, object] = {"graph_id": graph_id, "input": body.input, "state_key": body.state_key}
    # Absent, the hash of a request is what it always was.
    if body.notify_url is not None:
        fields["notify_url"] = body.notify_url
    if body.connections is not None:
        fields["connections"] = body.connections
    canonical = json.dumps(
        fields,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate_idempotency_key(key: str | None) -> None:
    if key is None:
        return
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise Unprocessable("Idempotency-Key must be 1-255 printable characters")


async def check_run_connections(session: AsyncSession, principal: Principal, mapping: dict[str, str]) -> None:
    """Each connection a run names is a live connection of the caller's own, with that provider
    (422 ``connection_not_found`` otherwise, before anything is written; another's is not revealed)."""
    usable = await connections.usable_for_run(
        session,
        owner_user_id=principal.user_id,
        mapping={p: c for p, c in mapping.items() if re.fullmatch(CANONICAL_UUID, c)},
    )
    for provider, connection_id in sorted(mapping.items()):
        if provider not in usable:
            raise Unprocessable(
                f"connections.{provider}: {connection_id!r} is not a live {provider} connection of yours",
                code=ErrorCode.CONNECTION_NOT_FOUND,
            )


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
    existing: GraphRun | None = None
    # The published catalog and the model's price, read before the start's transaction (one
    # statement): a refusal here has written nothing.
    spec, price = await published_graph_priced(database, graph_id)
    async with database.transaction() as session:
        validate_idempotency_key(idempotency_key)
        validate_input(spec, body.input)
        if body.notify_url is not None:
            check_notify_url(settings, body.notify_url)
        if body.connections:
            await check_run_connections(session, principal, body.connections)
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
        if existing is None:
            run = await _hold_and_record(
                session,
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
                    notify_url=body.notify_url,
                    connections=body.connections or None,
                    status="pending",
                    trace_id=ids.langfuse_trace_id(run_id),
                ),
                needed=estimate_run_credits(spec, body.input, _priced(spec, price), settings.markup),
            )
    if existing is not None:
        if existing.status == RunStatus.PENDING:
            # Perhaps a start that Temporal did not take: starting again starts it, or attaches.
            await start_recorded_run(database, temporal, settings, existing, retryable=True)
        return existing, False
    await start_recorded_run(database, temporal, settings, run, retryable=idempotency_key is not None)
    return run, True


@dataclass(frozen=True)
class ReplayPlan:
    input: dict[str, Any]
    from_checkpoint_id: str | None
    estimated_credits: int
    reused_calls: int


async def plan_replay(
    session: AsyncSession, settings: Settings, spec: GraphSpec, original: GraphRun, body: ReplayRequest
) -> ReplayPlan:
    """What a replay would run and hold, with the run-start preflight's pricing (a dry run answers
    exactly this)."""
    if body.from_checkpoint_id is None:
        payload = dict(original.input) if body.input is None else body.input
        validate_input(spec, payload)
        return ReplayPlan(payload, None, await estimate(session, settings, spec, payload), 0)
    step = next(
        (
            e.data
            for e in await events.of_kind(session, run_id=original.run_id, event="step")
            if e.data.get("checkpoint_id") == body.from_checkpoint_id
        ),
        None,
    )
    if step is None:
        raise NotFound(
            f"checkpoint {body.from_checkpoint_id} is not one of run {original.run_id}'s steps",
            code=ErrorCode.CHECKPOINT_NOT_FOUND,
        )
    reused = int(step.get("model_calls_so_far", 0))
    needed = estimate_replay_credits(
        spec,
        dict(original.input),
        await _price(session, spec),
        settings.markup,
        reused_calls=reused,
        remaining=bool(step.get("next")),
    )
    return ReplayPlan(dict(original.input), body.from_checkpoint_id, needed, reused)


async def start_replay(
    *,
    database: Database,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    original: GraphRun,
    body: ReplayRequest | None = None,
) -> GraphRun | ReplayPlan:
    """A new run with the original's graph (``replay_of`` links them), billed and held like any
    other start: over from the input (the original's, or ``body.input``), or at one of the
    original's checkpoints. A ``dry_run`` returns the :class:`ReplayPlan` and records nothing."""
    body = body or ReplayRequest()
    run_id = ids.replay_run_id()
    async with database.transaction() as session:
        spec = await published_graph(session, original.graph_id)
        plan = await plan_replay(session, settings, spec, original, body)
        if body.dry_run:
            return plan
        run = await _hold_and_record(
            session,
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
                # A replay runs on a thread of its own: it must not add to the original's.
                state_key=None,
                input=plan.input,
                replay_of=original.run_id,
                replay_from_checkpoint=plan.from_checkpoint_id,
                status="pending",
                trace_id=ids.langfuse_trace_id(run_id),
            ),
            needed=plan.estimated_credits,
        )
    await start_recorded_run(database, temporal, settings, run, retryable=False)
    return run


async def estimate(
    session: AsyncSession, settings: Settings, spec: GraphSpec, payload: dict[str, Any]
) -> int:
    """The run-start preflight's estimate (``db.preflight.run_estimate``, shared with the trigger-time
    checks of webhooks and schedules); 503 before any worker published the model's price."""
    try:
        return await preflight.run_estimate(session, spec, payload, settings.markup)
    except preflight.ModelNotPriced as exc:
        # A worker publishes the price of every model it serves when it starts.
        raise ServiceUnavailable(str(exc), code=ErrorCode.MODEL_NOT_PRICED) from None


async def _price(session: AsyncSession, spec: GraphSpec) -> ModelPrice:
    """The LiteLLM price of the graph's model (the workers' default model when it names none), as
    a worker published it (503 before any did)."""
    return _priced(spec, await prices.price_of(session, spec.model))


def _priced(spec: GraphSpec, price: ModelPrice | None) -> ModelPrice:
    if price is None:
        # A worker publishes the price of every model it serves when it starts.
        raise ServiceUnavailable(str(preflight.ModelNotPriced(spec.model)), code=ErrorCode.MODEL_NOT_PRICED)
    return price


async def _hold_and_record(
    session: AsyncSession, settings: Settings, spec: GraphSpec, run: GraphRun, *, needed: int | None = None
) -> GraphRun:
    """Reserve the run's estimate (402 if it is not available) and record the run, in the caller's
    transaction, so a refusal leaves nothing."""
    if needed is None:
        needed = await estimate(session, settings, spec, run.input)
    # Hold, thread check (under the account lock the hold took), run row and its event: one statement.
    record = await lifecycle.record_start(
        session,
        run=run,
        amount=needed,
        busy_statuses=ON_THREAD_STATUSES | {RunStatus.PENDING},
        event=status_event(RunStatus.PENDING),
    )
    if record.outcome == "no_account":
        raise NotFound(f"billing account {run.billing_account_id} not found")
    if record.outcome == "insufficient":
        raise PaymentRequired(preflight.shortfall_message(record.available or 0, needed))
    if record.outcome == "thread_busy":
        raise Conflict(
            f"run {record.other_run} of state_key {run.state_key!r} has not finished; one run of a thread at a time",
            code=ErrorCode.THREAD_BUSY,
        )
    return run


async def start_recorded_run(
    database: Database, temporal: Client, settings: Settings, run: GraphRun, *, retryable: bool
) -> None:
    """Start the workflow of a committed run (see the module docstring for a start that fails)."""
    try:
        await start_graph_workflow(temporal, settings, run)
    except ServiceUnavailable as exc:
        if retryable:
            raise ServiceUnavailable(
                f"{exc.message}; the run {run.run_id} is recorded: retry with the same key to start it, "
                "or the run sweeper starts it once Temporal is back"
            ) from exc
        async with database.transaction() as session:
            undone = await runs.delete_unstarted(session, run_id=run.run_id)
        if undone:
            raise


async def start_graph_workflow(temporal: Client, settings: Settings, run: GraphRun) -> None:
    """Start the run's ``GraphRunWorkflow`` (503 if Temporal cannot take it)."""
    try:
        await launch.start_graph_workflow(temporal, settings, run)
    except RPCError as exc:
        raise ServiceUnavailable(f"Temporal is unavailable: {exc.message}") from exc
