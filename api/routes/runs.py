"""Runs: start (idempotent), list, detail, charges, cancel."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, cast

from fastapi import APIRouter, Header, Query, Response, status

from api import run_service
from api.deps import StateDep, UserDep
from api.openapi import errors
from api.params import Limit, ObjectId, Timestamp, keyset
from api.presenters import receipt_out, run_links, run_out
from api.run_service import own_run
from api.run_starts import ReplayPlan, start_api_run, start_replay
from api.schemas import (
    ReceiptListResponse,
    ReplayEstimate,
    ReplayRequest,
    ReservationOut,
    RunListResponse,
    RunOut,
    StartRunRequest,
    StartRunResponse,
)
from db import ledger_reads, reservations, runs
from db.pagination import encode_cursor
from runledger.contracts.runs import RunKind, RunStatus

router = APIRouter(prefix="/api/v1", tags=["runs"])


@router.post(
    "/graphs/{graph_id}/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StartRunResponse,
    responses={
        200: {"model": StartRunResponse, "description": "the run an earlier request with this key started"},
        **errors(402, 503),
    },
)
async def start_run(
    graph_id: str,
    body: StartRunRequest,
    principal: UserDep,
    state: StateDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> StartRunResponse:
    run, created = await start_api_run(
        database=state.database,
        temporal=state.temporal,
        settings=state.settings,
        principal=principal,
        graph_id=graph_id,
        body=body,
        idempotency_key=idempotency_key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return StartRunResponse(
        run_id=run.run_id,
        workflow_id=run.workflow_id,
        status=RunStatus(run.status),
        links=run_links(state.settings, run),
    )


@router.get("/runs", response_model=RunListResponse)
async def list_runs(
    principal: UserDep,
    state: StateDep,
    status_: Annotated[RunStatus | None, Query(alias="status")] = None,
    graph_id: str | None = None,
    schedule_id: uuid.UUID | None = None,
    run_kind: RunKind | None = None,
    created_after: Timestamp | None = None,
    created_before: Timestamp | None = None,
    limit: Limit = 20,
    cursor: str | None = None,
) -> RunListResponse:
    filters = runs.RunFilters(
        status=status_,
        graph_id=graph_id,
        schedule_id=str(schedule_id) if schedule_id else None,
        run_kind=run_kind,
        created_after=created_after,
        created_before=created_before,
    )
    page = await run_service.list_page(
        state.database,
        billing_account_id=principal.billing_account_id,
        filters=filters,
        limit=limit,
        cursor=cursor,
    )
    return RunListResponse(runs=[run_out(state.settings, r) for r in page.runs], next_cursor=page.next_cursor)


@router.get("/runs/{run_id}", response_model=RunOut)
async def get_run(run_id: ObjectId, principal: UserDep, state: StateDep) -> RunOut:
    detail = run_out(state.settings, await own_run(state.database, principal, run_id))
    async with state.database.transaction() as session:
        hold = await reservations.for_run(session, run_id=run_id)
    if hold is not None:
        detail.reservation = ReservationOut(
            reserved_credits=hold.reserved_credits, settled_credits=hold.settled_credits, status=hold.status
        )
    return detail


@router.get("/runs/{run_id}/charges", response_model=ReceiptListResponse)
async def run_charges(
    run_id: ObjectId, principal: UserDep, state: StateDep, limit: Limit = 50, cursor: str | None = None
) -> ReceiptListResponse:
    """The run's receipts, newest first, cursor-paginated like ``/billing/receipts``."""
    run = await own_run(state.database, principal, run_id)
    before = cast("tuple[datetime, str] | None", keyset(cursor, ("timestamp", "uuid")))
    async with state.database.transaction() as session:
        rows = await ledger_reads.list_receipts(
            session,
            billing_account_id=principal.billing_account_id,
            run_id=run.run_id,
            limit=limit + 1,
            before=before,
        )
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor([page[-1].created_at.isoformat(), page[-1].id]) if more else None
    return ReceiptListResponse(receipts=[receipt_out(r) for r in page], next_cursor=next_cursor)


@router.post(
    "/runs/{run_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StartRunResponse | ReplayEstimate,
    responses={
        200: {"model": ReplayEstimate, "description": "dry_run: the estimate; nothing started"},
        **errors(402, 409, 422, 503),
    },
)
async def replay_run(
    run_id: ObjectId,
    principal: UserDep,
    state: StateDep,
    response: Response,
    body: ReplayRequest | None = None,
) -> StartRunResponse | ReplayEstimate:
    """A new run of the same graph; ``replay_of`` points at the original, which never changes.
    ``from_checkpoint_id`` starts it at one of the original's steps (not paid again); ``dry_run``
    answers the estimate with the run-start preflight's pricing."""
    original = await own_run(state.database, principal, run_id)
    run = await start_replay(
        database=state.database,
        temporal=state.temporal,
        settings=state.settings,
        principal=principal,
        original=original,
        body=body,
    )
    if isinstance(run, ReplayPlan):
        response.status_code = status.HTTP_200_OK
        return ReplayEstimate(estimated_credits=run.estimated_credits, reused_calls=run.reused_calls)
    return StartRunResponse(
        run_id=run.run_id,
        workflow_id=run.workflow_id,
        status=RunStatus(run.status),
        links=run_links(state.settings, run),
    )


@router.post(
    "/runs/{run_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunOut,
    responses=errors(503),
)
async def cancel_run(run_id: ObjectId, principal: UserDep, state: StateDep) -> RunOut:
    """Ask Temporal to cancel the run; the workflow records ``cancelled`` itself. A finished run is
    returned as it is."""
    run = await own_run(state.database, principal, run_id)
    await run_service.cancel(state.database, state.temporal, run)
    return run_out(state.settings, run)
