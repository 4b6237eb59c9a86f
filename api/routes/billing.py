"""The caller's ledger and receipts, newest first, cursor-paginated and filterable by run."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

from fastapi import APIRouter

from api.deps import AdminDep, StateDep, UserDep
from api.errors import NotFound
from api.openapi import errors
from api.params import Limit, keyset
from api.presenters import ledger_out, receipt_out
from api.schemas import LedgerListResponse, ReceiptListResponse, ReconciliationReportOut
from db import ledger_reads, reconciliation
from db.pagination import encode_cursor

router = APIRouter(prefix="/api/v1/billing", tags=["billing"])


@router.get("/ledger", response_model=LedgerListResponse)
async def get_ledger(
    principal: UserDep,
    state: StateDep,
    run_id: uuid.UUID | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> LedgerListResponse:
    key = keyset(cursor, ("int",))
    before_id = None if key is None else cast(int, key[0])
    async with state.database.transaction() as session:
        rows = await ledger_reads.list_ledger(
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
    before = cast("tuple[datetime, str] | None", keyset(cursor, ("timestamp", "uuid")))
    async with state.database.transaction() as session:
        rows = await ledger_reads.list_receipts(
            session,
            billing_account_id=principal.billing_account_id,
            limit=limit + 1,
            run_id=str(run_id) if run_id else None,
            before=before,
        )
    page, more = rows[:limit], len(rows) > limit
    next_cursor = encode_cursor([page[-1].created_at.isoformat(), page[-1].id]) if more else None
    return ReceiptListResponse(receipts=[receipt_out(r) for r in page], next_cursor=next_cursor)


@router.get("/reconciliation", response_model=ReconciliationReportOut, responses=errors(404))
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
