"""Bulk operations of the dashboard: proposed with their runs, claimed once, then one outcome per run.

The operation id is minted with the proposal and carried by the confirm form; :func:`claim` moves a
``proposed`` operation to ``running`` in one conditional UPDATE, so of two clicks (two tabs, a
double submit) exactly one executes it and the other finds it claimed.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import BulkOperation, BulkOperationItem


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
        .values(outcome=outcome, new_run_id=new_run_id, message=message)
    )


async def finish(session: AsyncSession, *, operation_id: str) -> None:
    await session.execute(
        update(BulkOperation)
        .where(BulkOperation.id == operation_id)
        .values(status="done", finished_at=func.now())
    )
