"""Bulk cancel and replay from the explorer: by the current filter or a checked selection.

1. ``POST /ui/bulk`` resolves the runs (the explorer's own filter parsing and ``db.runs.list_runs``,
   at most :data:`MAX_RUNS`), prices them (a replay: the run-start preflight of each run; a cancel
   spends nothing) and records the proposal under a new operation id; the confirmation page shows
   how many runs and the estimated credits.
2. ``POST /ui/bulk/{id}/run`` claims the proposal once (``db.bulk.claim``) and works through it in
   a background task: one run at a time, each outcome committed as it happens. A second click, a
   reload or another tab finds it claimed and lands on the same progress view.
3. ``GET /ui/bulk/{id}`` is that view: the outcome of every run, refreshing itself while it runs.
4. An operation whose executor vanished (the API process restarted) shows as stalled after
   :data:`STALL_SECONDS` without a step; ``POST /ui/bulk/{id}/continue`` marks the run that was
   being acted on ``failed`` (it may or may not have happened) and goes on with the rest. Every run
   is claimed before it is acted on (``db.bulk.claim_item``), so no run is acted on twice.

Each run goes through ``api.run_service`` (the JSON API's cancel and replay); a run that cannot be
acted on is recorded ``failed`` with its error, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api import run_service
from api.deps import AppState, StateDep
from api.errors import AppError, NotFound, Unprocessable
from api.schemas import ReplayRequest
from api.ui.auth import FormViewerDep, Viewer, ViewerDep
from api.ui.render import page
from api.ui.runs import describe, parse_query
from db import bulk, runs
from db.models import GraphRun
from db.runs import RunFilters
from db.ui_models import BulkOperation
from runledger.contracts.errors import ErrorCode
from runledger.contracts.runs import TERMINAL_STATUSES

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/ui", include_in_schema=False)

#: The most runs one operation acts on: the loop is bounded, and so is the confirmation.
MAX_RUNS = 200
#: An operation without a step for this long has lost its executor.
STALL_SECONDS = 30
ACTIONS = ("cancel", "replay")
#: Operations being worked on by this process (a strong reference keeps each task alive).
_running: set[asyncio.Task[None]] = set()


def _not_found(operation_id: str) -> NotFound:
    return NotFound(f"bulk operation {operation_id} not found", code=ErrorCode.BULK_OPERATION_NOT_FOUND)


async def _resolve(
    state: AppState, viewer: Viewer, form: dict[str, Any], selected: list[str]
) -> tuple[str, str | None, list[GraphRun], str]:
    """``(action, account scope, runs, description)`` of a bulk form."""
    action, _, target = str(form.get("mode", "")).partition(":")
    if action not in ACTIONS or target not in ("selected", "filter"):
        raise Unprocessable("mode: one of cancel:selected, replay:selected, cancel:filter, replay:filter")
    query = parse_query(viewer, {k: str(v) for k, v in form.items()})
    # A cancel acts only on runs still going; finished runs would only be "unchanged".
    skip = tuple(TERMINAL_STATUSES) if action == "cancel" else ()
    if target == "selected":
        if not selected:
            raise Unprocessable("no runs are checked: check some runs, or act on the whole filter")
        ids = tuple(str(uuid.UUID(r)) for r in selected)
        filters = RunFilters(run_ids=ids, exclude_statuses=skip)
        description = f"{len(ids)} checked runs"
    else:
        filters = replace(query.filters, exclude_statuses=skip)
        description = describe(query)
    async with state.database.transaction() as session:
        found = await runs.list_runs(
            session, billing_account_id=query.billing_account_id, filters=filters, limit=MAX_RUNS + 1
        )
    if len(found) > MAX_RUNS:
        raise Unprocessable(
            f"more than {MAX_RUNS} runs match: narrow the filter (one operation acts on at most {MAX_RUNS})"
        )
    return action, query.billing_account_id, found, description


async def _estimate(state: AppState, action: str, found: list[GraphRun]) -> int:
    """The sum of each replay's dry run (the run-start preflight); a run that cannot be replayed
    (its graph is no longer published) adds nothing and fails when its turn comes."""
    if action != "replay":
        return 0
    total = 0
    for run in found:
        try:
            plan = await run_service.replay_estimate(
                database=state.database,
                temporal=state.temporal,
                settings=state.settings,
                original=run,
                body=ReplayRequest(),
            )
        except AppError:
            continue
        total += plan.estimated_credits
    return total


@router.post("/bulk")
async def propose(request: Request, viewer: FormViewerDep, state: StateDep) -> Response:
    form = await request.form()
    selected = [str(v) for v in form.getlist("run_id")]
    try:
        action, account, found, description = await _resolve(state, viewer, dict(form), selected)
    except ValueError as exc:
        raise Unprocessable(f"run_id: {exc}") from None
    estimate = await _estimate(state, action, found)
    operation_id = str(uuid.uuid4())
    async with state.database.transaction() as session:
        await bulk.propose(
            session,
            operation_id=operation_id,
            action=action,
            billing_account_id=account,
            run_ids=[r.run_id for r in found],
            estimated_credits=estimate,
            description=description,
        )
    return page(
        "bulk_confirm.html",
        viewer=viewer,
        operation_id=operation_id,
        action=action,
        runs=found,
        estimate=estimate,
        description=description,
    )


async def _scoped(state: AppState, viewer: Viewer, operation_id: str) -> BulkOperation:
    try:
        uuid.UUID(operation_id)
    except ValueError:
        raise _not_found(operation_id) from None
    async with state.database.transaction() as session:
        operation = await bulk.get(
            session, operation_id=operation_id, billing_account_id=viewer.billing_account_id
        )
    if operation is None:
        raise _not_found(operation_id)
    return operation


@router.post("/bulk/{operation_id}/run")
async def run(operation_id: str, viewer: FormViewerDep, state: StateDep) -> Response:
    operation = await _scoped(state, viewer, operation_id)
    async with state.database.transaction() as session:
        claimed = await bulk.claim(session, operation_id=operation.id)
    if claimed:
        _start(state, operation)
    return RedirectResponse(f"/ui/bulk/{operation.id}", status_code=303)


@router.post("/bulk/{operation_id}/continue")
async def continue_stalled(operation_id: str, viewer: FormViewerDep, state: StateDep) -> Response:
    operation = await _scoped(state, viewer, operation_id)
    async with state.database.transaction() as session:
        stalled = await bulk.stalled(session, operation_id=operation.id, quiet_seconds=STALL_SECONDS)
        if stalled:
            await bulk.abandon(session, operation_id=operation.id)
    if stalled:
        _start(state, operation)
    return RedirectResponse(f"/ui/bulk/{operation.id}", status_code=303)


def _start(state: AppState, operation: BulkOperation) -> None:
    task = asyncio.create_task(execute(state, operation))
    _running.add(task)
    task.add_done_callback(_running.discard)


@router.get("/bulk/{operation_id}")
async def progress(operation_id: str, viewer: ViewerDep, state: StateDep) -> Response:
    operation = await _scoped(state, viewer, operation_id)
    async with state.database.transaction() as session:
        items = await bulk.items(session, operation_id=operation.id)
        stalled = await bulk.stalled(session, operation_id=operation.id, quiet_seconds=STALL_SECONDS)
    tally: dict[str, int] = {}
    for item in items:
        tally[item.outcome] = tally.get(item.outcome, 0) + 1
    return page("bulk.html", viewer=viewer, operation=operation, items=items, tally=tally, stalled=stalled)


async def execute(state: AppState, operation: BulkOperation) -> None:
    """Act on each run of a claimed operation, one at a time, committing each outcome."""
    async with state.database.transaction() as session:
        items = await bulk.items(session, operation_id=operation.id)
    for item in items:
        if item.outcome != "pending":
            continue
        async with state.database.transaction() as session:
            if not await bulk.claim_item(session, operation_id=operation.id, position=item.position):
                continue  # another executor has it
        outcome, new_run_id, message = await _act(state, operation, item.run_id)
        async with state.database.transaction() as session:
            await bulk.record_outcome(
                session,
                operation_id=operation.id,
                position=item.position,
                outcome=outcome,
                new_run_id=new_run_id,
                message=message,
            )
    async with state.database.transaction() as session:
        await bulk.finish(session, operation_id=operation.id)


async def _act(state: AppState, operation: BulkOperation, run_id: str) -> tuple[str, str | None, str | None]:
    try:
        current = await run_service.scoped_run(state.database, operation.billing_account_id, run_id)
        if operation.action == "cancel":
            asked = await run_service.cancel(state.database, state.temporal, current)
            return ("cancelled", None, None) if asked else ("unchanged", None, f"already {current.status}")
        new = await run_service.replay(
            database=state.database,
            temporal=state.temporal,
            settings=state.settings,
            original=current,
            body=ReplayRequest(),
        )
        return "replayed", new.run_id, None
    except AppError as exc:
        return "failed", None, f"{exc.code}: {exc.message}"
    except Exception as exc:  # one run's surprise must not strand the others
        log.exception("bulk_operation_run_failed", operation_id=operation.id, run_id=run_id)
        return "failed", None, f"{type(exc).__name__}: {exc}"
