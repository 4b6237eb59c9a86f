"""The caller's identity and balance, and the graph catalog."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import StateDep, UserDep
from api.schemas import GraphOut, MeResponse
from db import ledger, reservations
from runledger.contracts.catalog import CATALOG

router = APIRouter(prefix="/api/v1", tags=["me"])


@router.get("/me", response_model=MeResponse)
async def me(principal: UserDep, state: StateDep) -> MeResponse:
    async with state.database.transaction() as session:
        balance = await ledger.get_balance(session, billing_account_id=principal.billing_account_id)
        held = await reservations.held(session, billing_account_id=principal.billing_account_id)
    return MeResponse(
        user_id=principal.user_id,
        billing_account_id=principal.billing_account_id,
        balance_credits=balance,
        reserved_credits=held,
        available_credits=balance - held,
    )


@router.get("/graphs", response_model=list[GraphOut])
async def graphs(_: UserDep) -> list[GraphOut]:
    return [
        GraphOut(
            graph_id=spec.graph_id,
            description=spec.description,
            tool_ids=list(spec.tool_ids),
            input_schema=spec.input_schema,
        )
        for spec in CATALOG.values()
    ]
