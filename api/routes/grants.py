"""Execution grants of the caller: create, list, revoke (soft)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from api.deps import StateDep, UserDep
from api.errors import NotFound, Unprocessable
from api.schemas import CreateGrantRequest, GrantListResponse, GrantOut
from contracts.grants import is_valid_scope
from db import grants
from db.models import ExecutionGrant

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
        created_at=grant.created_at,
    )


def grant_not_found(grant_id: str) -> NotFound:
    return NotFound(f"grant {grant_id} not found", code="grant_not_found")


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
        grant = await grants.create_grant(
            session,
            user_id=principal.user_id,
            billing_account_id=principal.billing_account_id,
            scopes=sorted(set(body.scopes)),
            expires_at=body.expires_at,
            max_credits=body.max_credits,
        )
    return grant_out(grant)


@router.get("", response_model=GrantListResponse)
async def list_grants(principal: UserDep, state: StateDep) -> GrantListResponse:
    async with state.database.transaction() as session:
        rows = await grants.list_grants(session, user_id=principal.user_id)
    return GrantListResponse(grants=[grant_out(g) for g in rows])


@router.delete("/{grant_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def revoke_grant(grant_id: str, principal: UserDep, state: StateDep) -> Response:
    try:
        uuid.UUID(grant_id)
    except ValueError:
        raise grant_not_found(grant_id) from None
    async with state.database.transaction() as session:
        grant = await grants.get_grant(session, grant_id=grant_id, user_id=principal.user_id)
        if grant is None:
            raise grant_not_found(grant_id)
        await grants.revoke_grant(session, grant_id=grant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
