"""Bulk operations of the dashboard: proposed with their runs, claimed once, then one outcome per run.

The operation id is minted with the proposal and carried by the confirm form; :func:`claim` moves a
``proposed`` operation to ``running`` in one conditional UPDATE, so of two clicks (two tabs, a
double submit) exactly one executes it and the other finds it claimed. Each run is claimed the same
way (:func:`claim_item`: ``pending`` → ``working``) before it is acted on, so an operation that a
restarted API process left half done can be continued without acting on any run twice; a run left
``working`` by the dead process is :func:`abandon`-ed as ``failed`` (its action may have happened).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.ui_models import BulkOperation, BulkOperationItem


async def propose(
    session: AsyncSession,
    *,
    operation_id: str,
    action: str,
    billing_account_id: str | None,
    run_ids: Sequence[str],
    estimated_credits: int,
    description: str,
) -> BulkOperation:
    operation = BulkOperation(
        id=operation_id,
        action=action,
        billing_account_id=billing_account_id,
        estimated_credits=estimated_credits,
        description=description,
        status="proposed",
    )
    session.add(operation)
    await session.flush()
    session.add_all(
        BulkOperationItem(operation_id=operation_id, position=i, run_id=run_id)
        for i, run_id in enumerate(run_ids)
    )
    await session.flush()
    return operation


async def get(
    session: AsyncSession, *, operation_id: str, billing_account_id: str | None
) -> BulkOperation | None:
    """The operation; with ``billing_account_id``, only an operation of that account (tenant scope).
    None is the admin, who sees every operation."""
    stmt = select(BulkOperation).where(BulkOperation.id == operation_id)
    if billing_account_id is not None:
        stmt = stmt.where(BulkOperation.billing_account_id == billing_account_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def items(session: AsyncSession, *, operation_id: str) -> list[BulkOperationItem]:
    stmt = (
        select(BulkOperationItem)
        .where(BulkOperationItem.operation_id == operation_id)
        .order_by(BulkOperationItem.position)
    )
    return list((await session.execute(stmt)).scalars())


async def claim(session: AsyncSession, *, operation_id: str) -> bool:
    """``proposed`` → ``running``; False when another request claimed it first."""
    claimed = (
        await session.execute(
            update(BulkOperation)
            .where(BulkOperation.id == operation_id, BulkOperation.status == "proposed")
            .values(status="running", started_at=func.now())
            .returning(BulkOperation.id)
        )
    ).scalar_one_or_none()
    return claimed is not None


async def claim_item(session: AsyncSession, *, operation_id: str, position: int) -> bool:
    """``pending`` → ``working``; False when another executor took the run first."""
    claimed = (
        await session.execute(
            update(BulkOperationItem)
            .where(
                BulkOperationItem.operation_id == operation_id,
                BulkOperationItem.position == position,
                BulkOperationItem.outcome == "pending",
            )
            .values(outcome="working", updated_at=func.now())
            .returning(BulkOperationItem.position)
        )
    ).scalar_one_or_none()
    return claimed is not None


async def record_outcome(
    session: AsyncSession,
    *,
    operation_id: str,
    position: int,
    outcome: str,
    new_run_id: str | None = None,
    message: str | None = None,
) -> None:
    await session.execute(
        update(BulkOperationItem)
        .where(BulkOperationItem.operation_id == operation_id, BulkOperationItem.position == position)
        .values(outcome=outcome, new_run_id=new_run_id, message=message, updated_at=func.now())
    )


async def finish(session: AsyncSession, *, operation_id: str) -> None:
    """``done`` once no run is left pending or being worked on."""
    open_items = exists().where(
        BulkOperationItem.operation_id == operation_id, BulkOperationItem.outcome.in_(("pending", "working"))
    )
    await session.execute(
        update(BulkOperation)
        .where(BulkOperation.id == operation_id, BulkOperation.status == "running", ~open_items)
        .values(status="done", finished_at=func.now())
    )


async def stalled(session: AsyncSession, *, operation_id: str, quiet_seconds: int) -> bool:
    """A ``running`` operation with runs left whose last step (its start, or any run's claim or
    outcome) is older than ``quiet_seconds``: its executor is gone."""
    last_item = (
        select(func.max(BulkOperationItem.updated_at))
        .where(BulkOperationItem.operation_id == operation_id)
        .scalar_subquery()
    )
    quiet_since = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, quiet_seconds)
    open_items = exists().where(
        BulkOperationItem.operation_id == operation_id, BulkOperationItem.outcome.in_(("pending", "working"))
    )
    found = (
        await session.execute(
            select(BulkOperation.id).where(
                BulkOperation.id == operation_id,
                BulkOperation.status == "running",
                func.greatest(BulkOperation.started_at, func.coalesce(last_item, BulkOperation.started_at))
                < quiet_since,
                open_items,
            )
        )
    ).scalar_one_or_none()
    return found is not None


async def abandon(session: AsyncSession, *, operation_id: str) -> None:
    """Runs a vanished executor left ``working``: their action may or may not have happened."""
    await session.execute(
        update(BulkOperationItem)
        .where(BulkOperationItem.operation_id == operation_id, BulkOperationItem.outcome == "working")
        .values(
            outcome="failed",
            message="interrupted (the API process stopped): check this run before acting again",
            updated_at=func.now(),
        )
    )
