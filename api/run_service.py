"""Run queries and commands shared by the JSON API (``api.routes.runs``) and the dashboard
(``api.ui``): one implementation, so a page can never disagree with the API.

``billing_account_id`` scopes every call: a user's account, or None for the admin token's view of
every account (dashboard only; the JSON API always passes the caller's account). A run outside the
scope is answered exactly like a run that does not exist (404, existence not revealed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from temporalio.client import Client
from temporalio.service import RPCError

from api.errors import Conflict, NotFound, ServiceUnavailable, Unprocessable
from api.params import CANONICAL_UUID, KeyKind, keyset
from api.run_starts import ReplayPlan, start_replay
from api.schemas import ReplayRequest
from db import accounts, lifecycle, runs
from db.accounts import Principal
from db.models import GraphRun
from db.pagination import encode_cursor
from db.runs import RunFilters, RunOrder
from db.session import Database
from runledger.config import Settings
from runledger.contracts.errors import ErrorCode
from runledger.contracts.runs import RESUME_SIGNAL, TERMINAL_STATUSES, PauseReason, RunStatus

#: The pauses a value resumes (a pause for credits ends with a top-up, not a value).
INPUT_PAUSES = frozenset({PauseReason.AWAITING_INPUT, PauseReason.AWAITING_APPROVAL})


@dataclass(frozen=True)
class RunPage:
    runs: list[GraphRun]
    next_cursor: str | None


def parse_cursor(cursor: str | None, order: RunOrder = "created_desc") -> tuple[Any, str] | None:
    """The ``(key, run_id)`` a cursor of :func:`list_page` names (422 ``invalid_cursor`` if bad)."""
    kinds: tuple[KeyKind, KeyKind] = ("timestamp", "uuid") if order.startswith("created") else ("int", "uuid")
    return cast("tuple[Any, str] | None", keyset(cursor, kinds))


def _cursor_of(run: GraphRun, order: RunOrder) -> str:
    key: Any = run.created_at.isoformat() if order.startswith("created") else run.cost_credits
    return encode_cursor([key, run.run_id])


async def list_page(
    database: Database,
    *,
    billing_account_id: str | None,
    filters: RunFilters,
    limit: int,
    cursor: str | None = None,
    order: RunOrder = "created_desc",
) -> RunPage:
    before = parse_cursor(cursor, order)
    async with database.transaction() as session:
        rows = await runs.list_runs(
            session,
            billing_account_id=billing_account_id,
            filters=filters,
            limit=limit + 1,
            before=before,
            order=order,
        )
    page, more = rows[:limit], len(rows) > limit
    return RunPage(runs=page, next_cursor=_cursor_of(page[-1], order) if more else None)


def run_not_found(run_id: str) -> NotFound:
    return NotFound(f"run {run_id} not found", code=ErrorCode.RUN_NOT_FOUND)


async def scoped_run(database: Database, billing_account_id: str | None, run_id: str) -> GraphRun:
    """The run if it is in scope, else 404 — for another tenant's run too. A JSON route's
    ``run_id`` is already canonical (:data:`~api.params.ObjectId`); a page's is checked here."""
    if not re.fullmatch(CANONICAL_UUID, run_id):
        raise run_not_found(run_id)
    run_id = run_id.lower()
    async with database.transaction() as session:
        run = await runs.get_run(session, run_id=run_id, billing_account_id=billing_account_id)
    if run is None:
        raise run_not_found(run_id)
    return run


async def own_run(database: Database, principal: Principal, run_id: str) -> GraphRun:
    """The caller's run, or 404 (existence is not revealed)."""
    return await scoped_run(database, principal.billing_account_id, run_id)


async def cancel(database: Database, temporal: Client, run: GraphRun) -> bool:
    """Ask Temporal to cancel the run; the workflow records ``cancelled`` itself. False (nothing
    asked) when the run has already finished. The run is marked first, in one statement that sees
    its current status: an execution whose graph finishes after that leaves the run's end to the
    workflow (``db.lifecycle.finish``), so a cancel answered here ends the run ``cancelled``."""
    if run.status in TERMINAL_STATUSES:
        return False
    marked = await database.single_statement(
        lambda conn: lifecycle.request_cancel(conn, run_id=run.run_id, terminal_statuses=TERMINAL_STATUSES)
    )
    if not marked:  # it ended meanwhile
        return False
    try:
        await temporal.get_workflow_handle(run.workflow_id).cancel()
    except RPCError as exc:
        raise ServiceUnavailable(f"Temporal is unavailable: {exc.message}") from exc
    return True


async def replay_estimate(
    *, database: Database, temporal: Client, settings: Settings, original: GraphRun, body: ReplayRequest
) -> ReplayPlan:
    """What a replay would hold: the dry run of ``POST /runs/{id}/replay`` (the run-start
    preflight's pricing), recording nothing."""
    plan = await _replay(database, temporal, settings, original, body.model_copy(update={"dry_run": True}))
    if not isinstance(plan, ReplayPlan):  # a dry run records nothing; fail loudly if it ever did
        raise RuntimeError("a replay dry run started a run")
    return plan


async def replay(
    *, database: Database, temporal: Client, settings: Settings, original: GraphRun, body: ReplayRequest
) -> GraphRun:
    """Replay a run (``POST /runs/{id}/replay``'s start), billed to the original's account."""
    run = await _replay(database, temporal, settings, original, body.model_copy(update={"dry_run": False}))
    if isinstance(run, ReplayPlan):
        raise RuntimeError("a replay start returned a plan")
    return run


async def _replay(
    database: Database, temporal: Client, settings: Settings, original: GraphRun, body: ReplayRequest
) -> GraphRun | ReplayPlan:
    """On behalf of the account's owner: the admin acts for the account whose run it replays."""
    async with database.transaction() as session:
        principal = await accounts.principal_for_account(
            session, billing_account_id=original.billing_account_id
        )
    if principal is None:  # the FK makes this impossible; fail loudly if it ever is not
        raise RuntimeError(f"run {original.run_id} has no account owner")
    return await start_replay(
        database=database,
        temporal=temporal,
        settings=settings,
        principal=principal,
        original=original,
        body=body,
    )


async def resume(temporal: Client, run: GraphRun, value: Any) -> None:
    """Send the value a run paused by ``interrupt()`` (``awaiting_input``) or by a tool approval
    (``awaiting_approval``, value ``{"approved": bool, "reason"?: str}``) continues with; 409
    ``run_not_paused`` for any other run. The workflow, not this call, moves the run back to
    ``running``."""
    if run.status != RunStatus.PAUSED or run.pause_reason not in INPUT_PAUSES:
        raise Conflict(
            f"run {run.run_id} is {run.status}"
            + (f" ({run.pause_reason})" if run.pause_reason else "")
            + ", not waiting for input",
            code=ErrorCode.RUN_NOT_PAUSED,
        )
    if value is None:
        # LangGraph reads Command(resume=None) as no resume at all.
        raise Unprocessable("value must not be null: it is what the graph's interrupt() returns")
    if run.pause_reason == PauseReason.AWAITING_APPROVAL and not (
        isinstance(value, dict) and isinstance(value.get("approved"), bool)
    ):
        raise Unprocessable(
            'an approval is resumed with {"value": {"approved": true|false, "reason": "..."}}'
        )
    try:
        await temporal.get_workflow_handle(run.workflow_id).signal(RESUME_SIGNAL, {"value": value})
    except RPCError as exc:
        raise ServiceUnavailable(f"Temporal is unavailable: {exc.message}") from exc
