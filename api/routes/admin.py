"""Admin: create users (with an account and a key) and top up accounts idempotently."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from api.deps import AdminDep, StateDep
from api.errors import Conflict, NotFound, Unprocessable
from api.keys import display_prefix, hash_api_key, new_api_key
from api.presenters import ledger_out
from api.schemas import CreateUserRequest, CreateUserResponse, LedgerEntryOut, TopupRequest
from contracts.errors import ErrorCode
from db import accounts, ledger
from db.errors import TopupConflictError

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=CreateUserResponse)
async def create_user(body: CreateUserRequest, state: StateDep, _: AdminDep) -> CreateUserResponse:
    key = new_api_key()
    async with state.database.transaction() as session:
        principal = await accounts.create_user(
            session, name=body.name, key_prefix=display_prefix(key), key_hash=hash_api_key(key)
        )
    return CreateUserResponse(
        user_id=principal.user_id, billing_account_id=principal.billing_account_id, api_key=key
    )


@router.post(
    "/billing-accounts/{billing_account_id}/credits",
    status_code=status.HTTP_201_CREATED,
    response_model=LedgerEntryOut,
)
async def top_up(
    billing_account_id: str, body: TopupRequest, state: StateDep, _: AdminDep, response: Response
) -> LedgerEntryOut:
    try:
        uuid.UUID(billing_account_id)
    except ValueError as exc:
        raise Unprocessable("billing_account_id must be a UUID") from exc
    try:
        async with state.database.transaction() as session:
            if not await accounts.account_exists(session, billing_account_id=billing_account_id):
                raise NotFound(
                    f"billing account {billing_account_id} does not exist", code=ErrorCode.ACCOUNT_NOT_FOUND
                )
            entry, created = await ledger.record_topup(
                session,
                billing_account_id=billing_account_id,
                amount=body.amount_credits,
                reference=body.reference,
            )
    except TopupConflictError as exc:
        raise Conflict(str(exc), code=ErrorCode.TOPUP_REFERENCE_CONFLICT) from exc
    if not created:
        response.status_code = status.HTTP_200_OK
    return ledger_out(entry)
