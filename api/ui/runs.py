"""Dashboard pages of runs: the explorer (``/ui/runs``), a run's detail with its live timeline,
and the run's actions (cancel; replay after its estimate). Every page reads through
``api.run_service`` and the db repositories the JSON API uses; the viewer's account scope (None for
the admin) is passed to each, so another tenant's run is a 404 page.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Header, Query, Request
from fastapi.responses import RedirectResponse, Response
from sse_starlette import EventSourceResponse

from api import run_service
from api.deps import AppState, StateDep
from api.errors import Unprocessable
from api.event_stream import resume_point, run_event_response
from api.presenters import run_links
from api.schemas import ReplayRequest
from api.ui import timeline
from api.ui.auth import FormViewerDep, Viewer, ViewerDep
from api.ui.render import page
from db import accounts, catalog, events, ledger, ledger_reads, reservations, runs
from db.runs import RUN_ORDERS, RunFilters, RunOrder
from runledger.contracts.runs import TERMINAL_STATUSES, RunKind, RunStatus

router = APIRouter(prefix="/ui", include_in_schema=False)

PAGE_SIZE = 50
MAX_PAGE = 100
#: The explorer's query parameters (those of ``GET /api/v1/runs`` plus the dashboard's own).
FILTER_PARAMS = (
    "status",
    "graph_id",
    "schedule_id",
    "run_kind",
    "created_after",
    "created_before",
    "cost_min",
    "cost_max",
    "billing_account_id",
    "limit",
)


@dataclass(frozen=True)
class RunQuery:
    """A parsed explorer URL: the filters, the account (admin only), the order."""

    filters: RunFilters
    billing_account_id: str | None
    order: RunOrder
    #: The filter values as given, for the form, links and the bulk form.
    values: dict[str, str]

    def url(self, **changes: str | None) -> str:
        params = {**self.values, "sort": self.order, **changes}
        return "/ui/runs?" + urlencode({k: v for k, v in params.items() if v})


def _time(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Unprocessable(f"{name}: not a date and time ({value!r})") from None
    # A browser's datetime-local has no zone; the dashboard shows UTC, so read it as UTC.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _int(name: str, value: str) -> int:
    try:
        number = int(value.replace(",", ""))
    except ValueError:
        raise Unprocessable(f"{name}: not a whole number of credits ({value!r})") from None
    if number < 0:
        raise Unprocessable(f"{name}: must not be negative")
    return number


def _choice(name: str, value: str, allowed: list[str]) -> str:
    if value not in allowed:
        raise Unprocessable(f"{name}: one of {', '.join(allowed)}")
    return value


def _uuid(name: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise Unprocessable(f"{name}: not an id ({value!r})") from None


def parse_query(viewer: Viewer, params: dict[str, str]) -> RunQuery:
    """Read the filters of an explorer URL (or of the bulk form that repeats them); blank fields are
    unset. A user's ``billing_account_id`` is always their own, whatever the URL says."""
    values = {k: params[k].strip() for k in FILTER_PARAMS if params.get(k, "").strip()}
    if not viewer.is_admin:
        values.pop("billing_account_id", None)
    filters = RunFilters(
        status=_choice("status", values["status"], [s.value for s in RunStatus])
        if "status" in values
        else None,
        graph_id=values.get("graph_id"),
        schedule_id=_uuid("schedule_id", values["schedule_id"]) if "schedule_id" in values else None,
        run_kind=_choice("run_kind", values["run_kind"], [k.value for k in RunKind])
        if "run_kind" in values
        else None,
        created_after=_time("created_after", values["created_after"]) if "created_after" in values else None,
        created_before=_time("created_before", values["created_before"])
        if "created_before" in values
        else None,
        cost_min=_int("cost_min", values["cost_min"]) if "cost_min" in values else None,
        cost_max=_int("cost_max", values["cost_max"]) if "cost_max" in values else None,
    )
    account = viewer.billing_account_id
    if viewer.is_admin and "billing_account_id" in values:
        account = _uuid("billing_account_id", values["billing_account_id"])
    order = cast(RunOrder, _choice("sort", params.get("sort") or "created_desc", list(RUN_ORDERS)))
    return RunQuery(filters=filters, billing_account_id=account, order=order, values=values)


def describe(query: RunQuery) -> str:
    """The filter in words (bulk confirmations and their progress views)."""
    parts = [f"{k}={v}" for k, v in sorted(query.values.items())]
    return "runs where " + ", ".join(parts) if parts else "all runs"


@router.get("/runs")
async def explorer(
    request: Request, viewer: ViewerDep, state: StateDep, cursor: str | None = None
) -> Response:
    query = parse_query(viewer, dict(request.query_params))
    limit = _int("limit", query.values["limit"]) if "limit" in query.values else PAGE_SIZE
    if not 1 <= limit <= MAX_PAGE:
        raise Unprocessable(f"limit: 1 to {MAX_PAGE}")
    result = await run_service.list_page(
        state.database,
        billing_account_id=query.billing_account_id,
        filters=query.filters,
        limit=limit,
        cursor=cursor or None,
        order=query.order,
    )
    async with state.database.transaction() as session:
        counts = await runs.count_by_status(
            session, billing_account_id=query.billing_account_id, filters=query.filters
        )
        graph_ids = [g.graph_id for g in await catalog.current_graphs(session)]
        account_list = await accounts.list_accounts(session) if viewer.is_admin else []
    return page(
        "runs.html",
        viewer=viewer,
        query=query,
        runs=result.runs,
        next_url=query.url(cursor=result.next_cursor) if result.next_cursor else None,
        counts=counts,
        total=sum(counts.values()),
        statuses=[s.value for s in RunStatus],
        kinds=[k.value for k in RunKind],
        graph_ids=graph_ids,
        accounts=account_list,
        terminal=TERMINAL_STATUSES,
    )


@router.get("/runs/{run_id}")
async def detail(run_id: str, viewer: ViewerDep, state: StateDep, notice: str | None = None) -> Response:
    run = await run_service.scoped_run(state.database, viewer.billing_account_id, run_id)
    async with state.database.transaction() as session:
        hold = await reservations.for_run(session, run_id=run.run_id)
        receipts = await ledger_reads.list_receipts(
            session, billing_account_id=run.billing_account_id, run_id=run.run_id, limit=1000
        )
        entries = await ledger_reads.list_ledger(
            session, billing_account_id=run.billing_account_id, run_id=run.run_id, limit=1000
        )
        stored = await events.read_after(session, run_id=run.run_id, after_seq=0, limit=5000)
        replays = await runs.list_runs(
            session,
            billing_account_id=run.billing_account_id,
            filters=RunFilters(replay_of=run.run_id),
            limit=20,
        )
    rows = timeline.rows(stored)
    cost = run.cost_credits if run.status in TERMINAL_STATUSES else timeline.cost_so_far(stored)
    return page(
        "run.html",
        viewer=viewer,
        run=run,
        links=run_links(state.settings, run),
        hold=hold,
        receipts=receipts,
        entries=entries,
        rows=rows,
        cost=cost,
        last_seq=stored[-1].seq if stored else 0,
        replays=replays,
        finished=run.status in TERMINAL_STATUSES,
        awaiting=run.pause_reason
        if run.status == RunStatus.PAUSED and run.pause_reason in run_service.INPUT_PAUSES
        else None,
        notice=notice,
    )


@router.get("/runs/{run_id}/events", response_class=EventSourceResponse)
async def live_events(
    run_id: str,
    viewer: ViewerDep,
    state: StateDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> EventSourceResponse:
    """The API's event stream of the run, each event's data as its timeline row."""
    run = await run_service.scoped_run(state.database, viewer.billing_account_id, run_id)
    return run_event_response(state, run, resume_point(last_event_id, after), present=timeline.row)


def _replay_body(from_checkpoint_id: str | None) -> ReplayRequest:
    return ReplayRequest(from_checkpoint_id=from_checkpoint_id or None)


@router.get("/runs/{run_id}/replay")
async def replay_confirm(
    run_id: str, viewer: ViewerDep, state: StateDep, from_checkpoint_id: str | None = None
) -> Response:
    """The replay's estimate first — the dry run of ``POST /runs/{id}/replay`` — from the start or
    from one of the run's checkpoints (its steps before it are not paid again)."""
    run = await run_service.scoped_run(state.database, viewer.billing_account_id, run_id)
    plan = await run_service.replay_estimate(
        database=state.database,
        temporal=state.temporal,
        settings=state.settings,
        original=run,
        body=_replay_body(from_checkpoint_id),
    )
    async with state.database.transaction() as session:
        steps = await events.of_kind(session, run_id=run.run_id, event="step")
    available = await _available(state, run.billing_account_id)
    return page(
        "replay.html",
        viewer=viewer,
        run=run,
        plan=plan,
        steps=[e.data for e in steps],
        available=available,
    )


@router.post("/runs/{run_id}/replay")
async def replay(
    run_id: str,
    viewer: FormViewerDep,
    state: StateDep,
    from_checkpoint_id: Annotated[str, Form()] = "",
) -> Response:
    original = await run_service.scoped_run(state.database, viewer.billing_account_id, run_id)
    new = await run_service.replay(
        database=state.database,
        temporal=state.temporal,
        settings=state.settings,
        original=original,
        body=_replay_body(from_checkpoint_id),
    )
    return RedirectResponse(f"/ui/runs/{new.run_id}?notice=replay_started", status_code=303)


@router.post("/runs/{run_id}/resume")
async def resume(
    run_id: str,
    viewer: FormViewerDep,
    state: StateDep,
    value: Annotated[str, Form()] = "",
    approved: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """The value a paused run continues with: an approval's decision (``approved``, ``reason``),
    or the answer to its ``interrupt()`` (``value``: JSON, or else taken as plain text)."""
    run = await run_service.scoped_run(state.database, viewer.billing_account_id, run_id)
    answer: Any
    if approved:
        answer = {"approved": approved == "true", **({"reason": reason} if reason else {})}
    else:
        try:
            answer = json.loads(value)
        except ValueError:
            answer = value
    await run_service.resume(state.temporal, run, answer)
    return RedirectResponse(f"/ui/runs/{run.run_id}?notice=resumed", status_code=303)


@router.post("/runs/{run_id}/cancel")
async def cancel(run_id: str, viewer: FormViewerDep, state: StateDep) -> Response:
    run = await run_service.scoped_run(state.database, viewer.billing_account_id, run_id)
    asked = await run_service.cancel(state.database, state.temporal, run)
    notice = "cancel_requested" if asked else "already_finished"
    return RedirectResponse(f"/ui/runs/{run.run_id}?notice={notice}", status_code=303)


async def _available(state: AppState, billing_account_id: str) -> int:
    async with state.database.transaction() as session:
        balance = await ledger.get_balance(session, billing_account_id=billing_account_id)
        held = await reservations.held(session, billing_account_id=billing_account_id)
    return balance - held
