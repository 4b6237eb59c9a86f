"""The dashboard's billing page: balance, open holds, the ledger, and two charts (credits per day by
graph over the last 30 days, the top runs by cost), for the viewer's account — or, for the admin,
every account or the one chosen. Balances and holds are read as ``GET /api/v1/me`` reads them, the
ledger as ``GET /api/v1/billing/ledger`` does."""

from __future__ import annotations

import uuid
from datetime import UTC

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import StateDep
from api.errors import Unprocessable
from api.ui import charts
from api.ui.auth import ViewerDep
from api.ui.render import page
from db import accounts, grants, ledger, ledger_reads, reservations, spend

router = APIRouter(prefix="/ui", include_in_schema=False)

LEDGER_ROWS = 50


@router.get("/billing")
async def billing(viewer: ViewerDep, state: StateDep, billing_account_id: str | None = None) -> Response:
    account = viewer.billing_account_id
    if viewer.is_admin and billing_account_id:
        try:
            account = str(uuid.UUID(billing_account_id))
        except ValueError:
            raise Unprocessable(f"billing_account_id: not an id ({billing_account_id!r})") from None
    async with state.database.transaction() as session:
        today = (await grants.database_now(session)).astimezone(UTC).date()
        daily = await spend.credits_per_day_by_graph(session, billing_account_id=account)
        top = await spend.top_runs_by_cost(session, billing_account_id=account)
        holds = await reservations.open_holds(session, billing_account_id=account)
        account_list = await accounts.list_accounts(session) if viewer.is_admin else []
        balance = held = None
        entries = []
        if account is not None:
            balance = await ledger.get_balance(session, billing_account_id=account)
            held = await reservations.held(session, billing_account_id=account)
            entries = await ledger_reads.list_ledger(session, billing_account_id=account, limit=LEDGER_ROWS)
    daily_svg, legend = charts.daily_by_graph(daily, today=today)
    top_svg = charts.top_bars(
        [(f"{r.run_id[:8]} {r.graph_id}", r.cost_credits, f"/ui/runs/{r.run_id}") for r in top]
    )
    return page(
        "billing.html",
        viewer=viewer,
        account=account,
        accounts=account_list,
        balance=balance,
        held=held,
        holds=holds,
        entries=entries,
        daily_svg=daily_svg,
        legend=legend,
        top_svg=top_svg,
    )
