"""The caller's identity and balance, and the graph catalog (as the workers published it)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import StateDep, UserDep
from api.schemas import GraphOut, MeResponse
from db import catalog, ledger, reservations

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
async def graphs(_: UserDep, state: StateDep) -> list[GraphOut]:
    async with state.database.transaction() as session:
        published = await catalog.current_graphs(session)
    return [
        GraphOut(
            graph_id=spec.graph_id,
            description=spec.description,
            tool_ids=list(spec.tool_ids),
            input_schema=spec.input_schema,
            version=spec.version,
            source=spec.source,
            write_tools=list(spec.write_tools),
            approval_tools=list(spec.approval_tools),
            max_model_calls=spec.max_model_calls,
            model=spec.model,
        )
        for spec in published
    ]
