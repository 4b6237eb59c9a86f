"""Admin: create users (with an account and a key) and top up accounts idempotently."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Response, status
from temporalio.service import RPCError

from api.deps import AdminDep, AppState, StateDep
from api.errors import Conflict, NotFound
from api.keys import display_prefix, hash_api_key, new_api_key
from api.openapi import errors
from api.params import ObjectId
from api.presenters import ledger_out
from api.schemas import CreateUserRequest, CreateUserResponse, LedgerEntryOut, TopupRequest
from db import accounts, ledger, runs
from db.errors import TopupConflictError
from runledger.contracts.errors import ErrorCode
from runledger.contracts.runs import CREDITS_ADDED_SIGNAL

log = structlog.get_logger(__name__)

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
    responses={
        200: {"model": LedgerEntryOut, "description": "the entry of an earlier top-up"},
        **errors(409),
    },
)
async def top_up(
    billing_account_id: ObjectId, body: TopupRequest, state: StateDep, _: AdminDep, response: Response
) -> LedgerEntryOut:
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
    await wake_paused_runs(state, billing_account_id)
    return ledger_out(entry)


async def wake_paused_runs(state: AppState, billing_account_id: str) -> None:
    """Tell every run paused for credits on this account that credits arrived. Temporal holds their
    wait; a signal that cannot be delivered now is logged, and the run's own timeout still ends it."""
    async with state.database.transaction() as session:
        paused = await runs.paused_for_credits(session, billing_account_id=billing_account_id)
    for run in paused:
        try:
            await state.temporal.get_workflow_handle(run.workflow_id).signal(CREDITS_ADDED_SIGNAL)
        except RPCError as exc:
            log.warning("credits_signal_failed", run_id=run.run_id, error=exc.message)
