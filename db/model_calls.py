"""Model-call records: the durable "before" half of every billable call (NO_SILENT_UNBILLED_CALLS).

A call is recorded ``pending`` before the provider is asked, and settled (with its stored response and
its receipt) in the same transaction as the charge. A ``pending`` row that outlives its attempt marks a
call that may have reached the provider without being billed: reconciliation looks for exactly these.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ModelCall

#: The error message of a flagged call that bypassed the meter (its call key is ``unmetered:{n}``).
UNMETERED = "unmetered: a LiteLLM call that did not go through runledger's meter"


async def find_settled(session: AsyncSession, *, run_id: str, call_key: str) -> ModelCall | None:
    return (
        await session.execute(
            select(ModelCall).where(
                ModelCall.run_id == run_id, ModelCall.call_key == call_key, ModelCall.status == "settled"
            )
        )
    ).scalar_one_or_none()


async def open_call(
    session: AsyncSession, *, run_id: str, call_key: str, attempt: int, model: str, request_hash: str
) -> str:
    """Record the call as pending (idempotent per run, key and attempt) and return its id."""
    stmt = (
        insert(ModelCall)
        .values(run_id=run_id, call_key=call_key, attempt=attempt, model=model, request_hash=request_hash)
        .on_conflict_do_update(
            index_elements=["run_id", "call_key", "attempt"],
            set_={"request_hash": request_hash},
            where=ModelCall.status == "pending",
        )
        .returning(ModelCall.id)
    )
    call_id = (await session.execute(stmt)).scalar_one_or_none()
    if call_id is None:
        raise RuntimeError(f"model call {run_id}/{call_key}/{attempt} is already closed")
    return call_id


async def mark_failed(session: AsyncSession, *, call_id: str, error_message: str) -> None:
    """The provider answered with an error: nothing was used, nothing is billed."""
    await session.execute(
        update(ModelCall)
        .where(ModelCall.id == call_id, ModelCall.status == "pending")
        .values(status="failed", error_message=error_message[:2000], settled_at=func.now())
    )


async def settle(
    session: AsyncSession, *, call_id: str, usage_unit_id: str, response: dict[str, Any], receipt_id: str
) -> bool:
    """Settle a call into its receipt; ``False`` when it was settled already (a duplicate delivery).
    The ledger's charge statement settles calls itself; this is for a charge that found its receipt."""
    result = await session.execute(
        update(ModelCall)
        .where(ModelCall.id == call_id, ModelCall.status != "settled")
        .values(
            status="settled",
            usage_unit_id=usage_unit_id,
            response=response,
            receipt_id=receipt_id,
            settled_at=func.now(),
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def record_unmetered(
    session: AsyncSession, *, run_id: str, call_key: str, attempt: int, model: str, request_hash: str
) -> None:
    """A LiteLLM call of the run that bypassed the meter (NO_UNMETERED_MODEL_CALLS): recorded
    ``flagged`` at once, for reconciliation and an operator, since no receipt will ever settle it."""
    await session.execute(
        insert(ModelCall)
        .values(
            run_id=run_id,
            call_key=call_key,
            attempt=attempt,
            model=model,
            request_hash=request_hash,
            status="flagged",
            error_message=UNMETERED,
            settled_at=func.now(),
        )
        .on_conflict_do_nothing(index_elements=["run_id", "call_key", "attempt"])
    )


async def count_by_status(session: AsyncSession, *, run_id: str) -> dict[str, int]:
    rows = await session.execute(
        select(ModelCall.status, func.count()).where(ModelCall.run_id == run_id).group_by(ModelCall.status)
    )
    return {status: int(n) for status, n in rows}
