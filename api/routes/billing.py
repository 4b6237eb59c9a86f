"""The caller's ledger and receipts, newest first, cursor-paginated and filterable by run."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AdminDep, StateDep, UserDep
from api.errors import NotFound, Unprocessable
from api.presenters import ledger_out, receipt_out
from api.schemas import LedgerListResponse, ReceiptListResponse, ReconciliationReportOut
from db import ledger, reconciliation
from db.pagination import InvalidCursorError, decode_cursor, encode_cursor
from runledger.contracts.errors import ErrorCode

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])

Limit = Annotated[int, Query(ge=1, le=100)]


def _bad_cursor() -> Unprocessable:
    return Unprocessable("cursor is not valid", code=ErrorCode.INVALID_CURSOR)


@router.get("/ledger", response_model=LedgerListResponse)
async def get_ledger(
    principal: UserDep,
    state: StateDep,
    run_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> LedgerListResponse:
    before_id = None
    if cursor is not None:
        try:
            (before_id,) = decode_cursor(cursor, arity=1)
            before_id = int(before_id)
        except (InvalidCursorError, ValueError, TypeError) as exc:
            raise _bad_cursor() from exc
    async with state.database.transaction() as session:
        rows = await ledger.list_ledger(
            session,
            billing_account_id=principal.billing_account_id,
            limit=limit + 1,
            before_id=before_id,
            run_id=str(run_id) if run_id else None,
        )
    page, more = rows[:limit], len(rows) > limit
    return LedgerListResponse(
        entries=[ledger_out(e) for e in page], next_cursor=encode_cursor([page[-1].id]) if more else None
    )


@router.get("/receipts", response_model=ReceiptListResponse)
async def get_receipts(
    principal: UserDep,
    state: StateDep,
    run_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> ReceiptListResponse:
    before = None
    if cursor is not None:
        try:
            created_at, receipt_id = decode_cursor(cursor, arity=2)
            before = (datetime.fromisoformat(str(created_at)), str(uuid.UUID(str(receipt_id))))
        except (InvalidCursorError, ValueError) as exc:
            raise _bad_cursor() from exc
    async with state.database.transaction() as session:
        rows = await ledger.list_receipts(
            session,
            billing_account_id=principal.billing_account_id,
            limit=limit + 1,
            run_id=str(run_id) if run_id else None,
            before=before,
        )
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor([page[-1].created_at.isoformat(), page[-1].id]) if more else None
    return ReceiptListResponse(receipts=[receipt_out(r) for r in page], next_cursor=next_cursor)


@router.get("/reconciliation", response_model=ReconciliationReportOut)
async def last_reconciliation(state: StateDep, _: AdminDep) -> ReconciliationReportOut:
    """The last reconciliation report (admin): flagged model calls and per-account drift."""
    async with state.database.transaction() as session:
        report = await reconciliation.last_report(session)
    if report is None:
        raise NotFound("no reconciliation has run yet", code="no_reconciliation_report")
    return ReconciliationReportOut(
        report_id=report.id,
        started_at=report.started_at,
        finished_at=report.finished_at,
        threshold_seconds=report.threshold_seconds,
        flagged_calls=report.flagged_calls,
        accounts_checked=report.accounts_checked,
        accounts_with_drift=report.accounts_with_drift,
        details=report.details,
    )
