"""Execution grants of the caller: create, list, revoke (soft)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import StateDep, UserDep
from api.errors import NotFound, Unprocessable
from api.params import CANONICAL_UUID, ObjectId
from api.schemas import CreateGrantRequest, GrantListResponse, GrantOut
from db import connections, grants
from db.accounts import Principal
from db.trigger_models import ExecutionGrant
from runledger.contracts.errors import ErrorCode
from runledger.contracts.grants import check_grant, is_valid_scope, scope_for_graph

router = APIRouter(prefix="/api/v1/grants", tags=["grants"])


def grant_out(grant: ExecutionGrant) -> GrantOut:
    return GrantOut(
        grant_id=grant.id,
        billing_account_id=grant.billing_account_id,
        scopes=list(grant.scopes),
        expires_at=grant.expires_at,
        revoked_at=grant.revoked_at,
        max_credits=grant.max_credits,
        spent_credits=grant.spent_credits,
        connections=dict(grant.connections),
        created_at=grant.created_at,
    )


def grant_not_found(grant_id: str) -> NotFound:
    return NotFound(f"grant {grant_id} not found", code="grant_not_found")


async def grant_for_trigger(
    session: AsyncSession, principal: Principal, *, graph_id: str, grant_id: str | None
) -> tuple[ExecutionGrant, bool]:
    """The grant a schedule or webhook trigger runs under: the caller's own ``grant_id`` (404 when it
    is not theirs, 422 when it does not allow ``graph_id`` now), or a new one scoped to the graph.
    Returns ``(grant, minted)``; a minted grant is revoked with its trigger."""
    if grant_id is None:
        minted = await grants.create_grant(
            session,
            user_id=principal.user_id,
            billing_account_id=principal.billing_account_id,
            scopes=[scope_for_graph(graph_id)],
            expires_at=None,
            max_credits=None,
        )
        return minted, True
    if not re.fullmatch(CANONICAL_UUID, grant_id):
        raise grant_not_found(grant_id)
    grant = await grants.get_grant(session, grant_id=grant_id.lower(), user_id=principal.user_id)
    if grant is None:
        raise grant_not_found(grant_id)
    denied = check_grant(grants.view(grant), graph_id=graph_id, now=await grants.database_now(session))
    if denied is not None:
        raise Unprocessable(denied.message, code=denied.code)
    return grant, False


@router.post("", status_code=status.HTTP_201_CREATED, response_model=GrantOut)
async def create_grant(body: CreateGrantRequest, principal: UserDep, state: StateDep) -> GrantOut:
    bad = [scope for scope in body.scopes if not is_valid_scope(scope)]
    if bad:
        raise Unprocessable(f"invalid scopes {bad}; use graph:execute:{{graph_id}} or graph:execute:*")
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise Unprocessable("expires_at must carry a time zone")
    async with state.database.transaction() as session:
        if body.expires_at is not None and body.expires_at <= await grants.database_now(session):
            raise Unprocessable("expires_at must be in the future")
        await _check_connections(session, principal, body.connections)
        grant = await grants.create_grant(
            session,
            user_id=principal.user_id,
            billing_account_id=principal.billing_account_id,
            scopes=sorted(set(body.scopes)),
            expires_at=body.expires_at,
            max_credits=body.max_credits,
            connections=body.connections,
        )
    return grant_out(grant)


async def _check_connections(session: AsyncSession, principal: Principal, mapping: dict[str, str]) -> None:
    """Every mapped connection is the caller's own, live (404 otherwise: another's is not revealed)."""
    valid: list[str] = []
    for connection_id in mapping.values():
        if re.fullmatch(CANONICAL_UUID, connection_id, flags=re.IGNORECASE):
            valid.append(connection_id.lower())
        else:
            raise NotFound(f"connection {connection_id} not found", code=ErrorCode.CONNECTION_NOT_FOUND)
    owned = await connections.owned_ids(session, owner_user_id=principal.user_id, ids=valid)
    missing = sorted(set(valid) - owned)
    if missing:
        raise NotFound(f"connection {missing[0]} not found", code=ErrorCode.CONNECTION_NOT_FOUND)


@router.get("", response_model=GrantListResponse)
async def list_grants(principal: UserDep, state: StateDep) -> GrantListResponse:
    async with state.database.transaction() as session:
        rows = await grants.list_grants(session, user_id=principal.user_id)
    return GrantListResponse(grants=[grant_out(g) for g in rows])


@router.delete("/{grant_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def revoke_grant(grant_id: ObjectId, principal: UserDep, state: StateDep) -> Response:
    async with state.database.transaction() as session:
        grant = await grants.get_grant(session, grant_id=grant_id, user_id=principal.user_id)
        if grant is None:
            raise grant_not_found(grant_id)
        await grants.revoke_grant(session, grant_id=grant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
