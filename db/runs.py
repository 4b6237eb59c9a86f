"""Graph runs and their permanent start-idempotency records (IDEMPOTENT_RUN_START).

Status changes go through :func:`transition`; the database trigger rejects any backward move, so a
late or repeated update of a finished run is a no-op here, never a regression.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Select, Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import CreditReservation, GraphRun, RunEvent, RunStartRequest
from runledger.contracts.scrub import scrub

#: The runs table for the statements of a run's own life (insert, status, output): SQLAlchemy Core,
#: not the ORM, because an ORM-enabled UPDATE costs several times its Core twin in CPU (it
#: synchronizes the session's identity map) and these run several times for every run.
RUNS = cast(Table, GraphRun.__table__)

TERMINAL = ("success", "error", "cancelled", "skipped")
#: Statuses a run may move to from each status; mirrors the SQL trigger of the first migration.
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "running": ("pending", "paused"),
    "paused": ("running",),
    "success": ("running",),
    "error": ("pending", "running", "paused"),
    "cancelled": ("pending", "running", "paused"),
    "skipped": ("pending", "running", "paused"),
}


@dataclass(frozen=True)
class StartClaim:
    """Result of claiming an idempotency key: ``created`` is False when the key was already used."""

    created: bool
    run_id: str
    request_hash: str


async def claim_start(
    session: AsyncSession,
    *,
    billing_account_id: str,
    graph_id: str,
    idempotency_key: str,
    request_hash: str,
    run_id: str,
) -> StartClaim:
    """Insert the idempotency record. Concurrent claims of one key serialize on the primary key: the
    losers wait for the winner's commit and then read its record."""
    inserted = (
        await session.execute(
            insert(RunStartRequest)
            .values(
                billing_account_id=billing_account_id,
                graph_id=graph_id,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
                run_id=run_id,
            )
            .on_conflict_do_nothing()
            .returning(RunStartRequest.run_id)
        )
    ).scalar_one_or_none()
    if inserted is not None:
        return StartClaim(created=True, run_id=inserted, request_hash=request_hash)
    existing = (
        await session.execute(
            select(RunStartRequest).where(
                RunStartRequest.billing_account_id == billing_account_id,
                RunStartRequest.graph_id == graph_id,
                RunStartRequest.idempotency_key == idempotency_key,
            )
        )
    ).scalar_one()
    return StartClaim(created=False, run_id=existing.run_id, request_hash=existing.request_hash)


async def insert_slot_run(session: AsyncSession, *, run: GraphRun) -> tuple[GraphRun, bool]:
    """Insert the run of a schedule slot once (ONE_RUN_PER_SLOT): a slot delivered again returns the
    run recorded the first time, ``created`` False."""
    if run.schedule_id is None or run.scheduled_for is None:
        raise ValueError("a slot run needs schedule_id and scheduled_for")
    inserted = await _insert_if_new(session, run)
    existing = (
        await session.execute(
            select(GraphRun)
            .where(GraphRun.schedule_id == run.schedule_id, GraphRun.scheduled_for == run.scheduled_for)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return existing, inserted is not None


async def insert_run_once(session: AsyncSession, *, run: GraphRun) -> tuple[GraphRun, bool]:
    """Insert a run whose id is derived from its trigger (a webhook delivery): delivered again, it
    returns the run recorded the first time, ``created`` False. A concurrent twin waits for the
    first insert's commit and then sees it."""
    inserted = await _insert_if_new(session, run)
    existing = (
        await session.execute(
            select(GraphRun).where(GraphRun.run_id == run.run_id).execution_options(populate_existing=True)
        )
    ).scalar_one()
    return existing, inserted is not None


async def _insert_if_new(session: AsyncSession, run: GraphRun) -> str | None:
    """INSERT ... ON CONFLICT DO NOTHING: the run id when this call inserted it, else None."""
    values = {
        c.key: getattr(run, c.key) for c in GraphRun.__table__.columns if getattr(run, c.key) is not None
    }
    inserted: str | None = (
        await session.execute(
            insert(GraphRun).values(**values).on_conflict_do_nothing().returning(GraphRun.run_id)
        )
    ).scalar_one_or_none()
    return inserted


async def get_run(
    session: AsyncSession, *, run_id: str, billing_account_id: str | None = None
) -> GraphRun | None:
    """A run by id; with ``billing_account_id``, only if it belongs to that account (tenant scope)."""
    stmt = select(GraphRun).where(GraphRun.run_id == run_id)
    if billing_account_id is not None:
        stmt = stmt.where(GraphRun.billing_account_id == billing_account_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def status_of(session: AsyncSession, *, run_id: str) -> str | None:
    """A run's status; None when there is no such run."""
    status: str | None = (
        await session.execute(select(RUNS.c.status).where(RUNS.c.run_id == run_id))
    ).scalar_one_or_none()
    return status


@dataclass(frozen=True)
class RunFilters:
    status: str | None = None
    graph_id: str | None = None
    schedule_id: str | None = None
    run_kind: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    #: Inclusive bounds on the run's charged credits (the dashboard's cost range).
    cost_min: int | None = None
    cost_max: int | None = None
    #: Replays of this run; runs of this webhook trigger.
    replay_of: str | None = None
    webhook_trigger_id: str | None = None
    #: Only these runs (a dashboard selection); statuses to leave out (a bulk cancel skips finished runs).
    run_ids: tuple[str, ...] | None = None
    exclude_statuses: tuple[str, ...] = ()


#: Orders of :func:`list_runs`; each is a keyset on ``(key, run_id)``.
RunOrder = Literal["created_desc", "created_asc", "cost_desc", "cost_asc"]
RUN_ORDERS: tuple[str, ...] = ("created_desc", "created_asc", "cost_desc", "cost_asc")


def _filtered(stmt: Any, billing_account_id: str | None, filters: RunFilters, *, status: bool = True) -> Any:
    """``billing_account_id`` None is every account (the admin's view)."""
    if billing_account_id is not None:
        stmt = stmt.where(GraphRun.billing_account_id == billing_account_id)
    if status and filters.status is not None:
        stmt = stmt.where(GraphRun.status == filters.status)
    if filters.graph_id is not None:
        stmt = stmt.where(GraphRun.graph_id == filters.graph_id)
    if filters.schedule_id is not None:
        stmt = stmt.where(GraphRun.schedule_id == filters.schedule_id)
    if filters.run_kind is not None:
        stmt = stmt.where(GraphRun.run_kind == filters.run_kind)
    if filters.created_after is not None:
        stmt = stmt.where(GraphRun.created_at > filters.created_after)
    if filters.created_before is not None:
        stmt = stmt.where(GraphRun.created_at < filters.created_before)
    if filters.cost_min is not None:
        stmt = stmt.where(GraphRun.cost_credits >= filters.cost_min)
    if filters.cost_max is not None:
        stmt = stmt.where(GraphRun.cost_credits <= filters.cost_max)
    if filters.replay_of is not None:
        stmt = stmt.where(GraphRun.replay_of == filters.replay_of)
    if filters.webhook_trigger_id is not None:
        stmt = stmt.where(GraphRun.webhook_trigger_id == filters.webhook_trigger_id)
    if filters.run_ids is not None:
        stmt = stmt.where(GraphRun.run_id.in_(filters.run_ids))
    if filters.exclude_statuses:
        stmt = stmt.where(GraphRun.status.not_in(filters.exclude_statuses))
    return stmt


async def list_runs(
    session: AsyncSession,
    *,
    billing_account_id: str | None,
    filters: RunFilters,
    limit: int,
    before: tuple[Any, str] | None = None,
    order: RunOrder = "created_desc",
) -> list[GraphRun]:
    """Runs in ``order`` (newest first by default), keyset-paginated on ``(key, run_id)`` where the
    key is ``created_at`` or ``cost_credits``; ``before`` is the last row's pair of the previous page.
    ``billing_account_id`` None lists every account's runs (admin)."""
    stmt = list_runs_query(
        billing_account_id=billing_account_id, filters=filters, limit=limit, before=before, order=order
    )
    return list((await session.execute(stmt)).scalars())


def list_runs_query(
    *,
    billing_account_id: str | None,
    filters: RunFilters,
    limit: int,
    before: tuple[Any, str] | None = None,
    order: RunOrder = "created_desc",
) -> Select[Any]:
    """The statement :func:`list_runs` runs (its query plan is checked with ``EXPLAIN`` in tests)."""
    stmt = _filtered(select(GraphRun), billing_account_id, filters)
    key = GraphRun.created_at if order.startswith("created") else GraphRun.cost_credits
    descending = order.endswith("desc")
    if before is not None:
        value, run_id = before
        if descending:
            stmt = stmt.where((key < value) | ((key == value) & (GraphRun.run_id < run_id)))
        else:
            stmt = stmt.where((key > value) | ((key == value) & (GraphRun.run_id > run_id)))
    if descending:
        stmt = stmt.order_by(key.desc(), GraphRun.run_id.desc())
    else:
        stmt = stmt.order_by(key.asc(), GraphRun.run_id.asc())
    limited: Select[Any] = stmt.limit(limit)
    return limited


async def count_by_status(
    session: AsyncSession, *, billing_account_id: str | None, filters: RunFilters
) -> dict[str, int]:
    """How many runs match ``filters`` (its status aside) in each status."""
    stmt = _filtered(
        select(GraphRun.status, func.count()), billing_account_id, filters, status=False
    ).group_by(GraphRun.status)
    return {status: int(n) for status, n in (await session.execute(stmt)).all()}


async def transition(
    session: AsyncSession, *, run_id: str, to: str, values: dict[str, Any] | None = None
) -> bool:
    """Move a run to ``to`` if that is a legal step from its current status; returns whether it moved.
    ``started_at``/``completed_at`` are stamped by the database clock."""
    extra: dict[str, Any] = dict(values or {})
    if isinstance(extra.get("error_message"), str):
        extra["error_message"] = scrub.text(extra["error_message"])
    if to == "running":
        extra.setdefault("started_at", func.coalesce(RUNS.c.started_at, func.now()))
        extra.setdefault("pause_reason", None)
    if to != "paused":
        extra.setdefault("pending_input", None)
    if to in TERMINAL:
        extra.setdefault("completed_at", func.now())
    result = await session.execute(
        update(RUNS)
        .where(RUNS.c.run_id == run_id, RUNS.c.status.in_(ALLOWED_FROM[to]))
        .values(status=to, **extra)
        .returning(RUNS.c.run_id)
    )
    return result.scalar_one_or_none() is not None


async def paused_for_credits(session: AsyncSession, *, billing_account_id: str) -> list[GraphRun]:
    """Runs of an account waiting for a top-up."""
    stmt = select(GraphRun).where(
        GraphRun.billing_account_id == billing_account_id,
        GraphRun.status == "paused",
        GraphRun.pause_reason == "insufficient_credits",
    )
    return list((await session.execute(stmt)).scalars())


async def run_on_thread(
    session: AsyncSession,
    *,
    billing_account_id: str,
    state_key: str,
    except_run_id: str,
    statuses: frozenset[str],
) -> str | None:
    """Another run of this account's ``state_key`` thread in one of ``statuses`` (its id), if any.
    Callers hold the account's row lock (``reservations.reserve``), so two starts on one thread
    cannot both see it free."""
    stmt = (
        select(GraphRun.run_id)
        .where(
            GraphRun.billing_account_id == billing_account_id,
            GraphRun.state_key == state_key,
            GraphRun.run_id != except_run_id,
            GraphRun.status.in_(sorted(statuses)),
        )
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def delete_unstarted(session: AsyncSession, *, run_id: str) -> bool:
    """Undo a keyless start whose workflow Temporal did not take: delete the run, its hold and its
    events, only while the run is still ``pending``. False when the run moved on (its workflow took
    it after all)."""
    locked = (
        await session.execute(
            select(GraphRun.run_id)
            .where(GraphRun.run_id == run_id, GraphRun.status == "pending")
            .with_for_update()
        )
    ).scalar_one_or_none()
    if locked is None:
        return False
    await session.execute(delete(RunEvent).where(RunEvent.run_id == run_id))
    await session.execute(delete(CreditReservation).where(CreditReservation.run_id == run_id))
    await session.execute(delete(GraphRun).where(GraphRun.run_id == run_id))
    return True


async def unfinished_older_than(
    session: AsyncSession, *, older_than_seconds: int, limit: int
) -> list[GraphRun]:
    """Runs not yet terminal that were created more than ``older_than_seconds`` ago, oldest first:
    what the run sweeper checks against Temporal."""
    stmt = (
        select(GraphRun)
        .where(
            GraphRun.status.in_(("pending", "running", "paused")),
            GraphRun.created_at <= func.now() - func.make_interval(0, 0, 0, 0, 0, 0, older_than_seconds),
        )
        .order_by(GraphRun.created_at)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())
