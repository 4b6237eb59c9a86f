"""Model-call records: the durable "before" half of every billable call (NO_SILENT_UNBILLED_CALLS).

A call is recorded ``pending`` before the provider is asked, with runledger's ``usage_unit_id`` and
its reserved maximum cost (with its reservation, by ``db.reservations.reserve_call``), and closed in the same transaction as its charge (``settled``, or
``partial`` for a broken stream charged for what arrived), as ``failed`` when the provider refused it
before sending anything, or as ``unsettled`` with a reason when it reached the provider but is not
charged (a charge write that kept failing, whose owed charge is kept in ``charge``; usage that could
not be known; an attempt that ended while the call was in flight). A later attempt of the run and
reconciliation write the owed charges; reconciliation flags what cannot be settled.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ModelCall
from runledger.contracts.scrub import scrub

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


async def mark_failed(session: AsyncSession, *, call_id: str, error_message: str) -> None:
    """The provider refused the call before sending anything: nothing was used, nothing is billed."""
    await session.execute(
        update(ModelCall)
        .where(ModelCall.id == call_id, ModelCall.status == "pending")
        .values(status="failed", error_message=scrub.text(error_message)[:2000], settled_at=func.now())
    )


async def mark_unsettled(
    session: AsyncSession, *, call_id: str, reason: str, owed: dict[str, Any] | None = None
) -> None:
    """The call reached the provider and is not charged: ``reason`` says why; ``owed`` is the charge
    it still owes when that is known (written later under the same key)."""
    await session.execute(
        update(ModelCall)
        .where(ModelCall.id == call_id, ModelCall.status.in_(("pending", "unsettled")))
        .values(status="unsettled", error_message=reason[:2000], charge=owed)
    )


async def unsettle_lost_attempts(session: AsyncSession, *, run_id: str, attempt: int) -> int:
    """Calls of the run's earlier attempts still ``pending``: their attempt ended (a lost worker)
    while they were at the provider, so what they used is unknown."""
    result = await session.execute(
        update(ModelCall)
        .where(ModelCall.run_id == run_id, ModelCall.attempt < attempt, ModelCall.status == "pending")
        .values(
            status="unsettled",
            error_message="its attempt ended while the call was at the provider; usage unknown",
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def owed_charges(
    session: AsyncSession, *, run_id: str | None = None, limit: int = 1000
) -> list[ModelCall]:
    """Unsettled calls whose charge is known (of one run, or of every run), oldest first."""
    stmt = select(ModelCall).where(ModelCall.status == "unsettled", ModelCall.charge.is_not(None))
    if run_id is not None:
        stmt = stmt.where(ModelCall.run_id == run_id)
    return list((await session.execute(stmt.order_by(ModelCall.created_at).limit(limit))).scalars())


async def settle(
    session: AsyncSession,
    *,
    call_id: str,
    status: str,
    provider_response_id: str | None,
    response: dict[str, Any],
    receipt_id: str,
) -> bool:
    """Settle a call into its receipt; ``False`` when it was settled already (a duplicate delivery).
    The ledger's charge statement settles calls itself; this is for a charge that found its receipt."""
    result = await session.execute(
        update(ModelCall)
        .where(ModelCall.id == call_id, ModelCall.status.not_in(("settled", "partial")))
        .values(
            status=status,
            provider_response_id=provider_response_id,
            response=response,
            receipt_id=receipt_id,
            charge=None,
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
