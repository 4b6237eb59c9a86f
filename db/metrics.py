"""The cluster-wide business numbers behind ``GET /metrics``, read from the system of record.

The API and the worker are separate processes (and either may have replicas), so no process's own
memory knows these totals: each scrape reads them here, in one transaction with a short statement
timeout so a slow scrape never holds a connection for long.

Run durations (``completed_at - started_at`` of every run that started and completed) are bucketed
in SQL into cumulative histogram buckets (``count(*) FILTER (WHERE duration <= bound)``) over *all*
completed runs, not a recent window: runs are never deleted, so each bucket only grows, which is
what a Prometheus histogram is; ``rate()`` and ``histogram_quantile()`` over a range then describe
the runs that completed in that range. Every scrape aggregates ``graph_runs`` and ``charge_receipts``
in full: cheap at this project's volumes; at millions of rows the next step is a rollup table kept
by the writers.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ChargeConflict, ChargeReceipt, GraphRun, ModelCall, ReconciliationReport

#: Upper bounds (seconds) of the run duration buckets: from a one-call graph to a day-long credit pause.
DURATION_BUCKETS: tuple[float, ...] = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600, 21600, 86400)
STATEMENT_TIMEOUT_MS = 5_000
#: The statuses of ``model_calls`` (the CHECK constraint of the table).
MODEL_CALL_STATUSES = ("pending", "settled", "partial", "failed", "unsettled", "flagged")


@dataclass(frozen=True)
class RunCount:
    graph_id: str
    status: str
    runs: int


@dataclass(frozen=True)
class RunDurations:
    """Cumulative counts: ``buckets[i]`` runs took at most ``DURATION_BUCKETS[i]`` seconds."""

    graph_id: str
    status: str
    buckets: tuple[int, ...]
    count: int
    sum_seconds: float


@dataclass(frozen=True)
class ChargeTotals:
    """What the receipts of one graph and model add up to (one receipt per billed model call)."""

    graph_id: str
    model: str
    calls: int
    tokens_in: int
    tokens_out: int
    credits: int
    cost_usd: Decimal


@dataclass(frozen=True)
class ReconciliationSummary:
    """The counts of the last reconciliation report."""

    finished_at_epoch: float
    accounts_checked: int
    accounts_with_drift: int
    flagged_calls: int


@dataclass(frozen=True)
class MetricsSnapshot:
    runs: list[RunCount]
    durations: list[RunDurations]
    charges: list[ChargeTotals]
    charge_conflicts: int
    #: ``model_calls`` rows by status (``db.models.ModelCall``): pending, settled, partial, failed,
    #: unsettled, flagged.
    model_calls_by_status: dict[str, int]
    reconciliation: ReconciliationSummary | None


async def snapshot(session: AsyncSession) -> MetricsSnapshot:
    """All the numbers of one scrape, from one consistent view: call it first in a fresh transaction
    (it sets the transaction REPEATABLE READ, READ ONLY), so the run counts, durations and receipts
    agree with each other."""
    await session.connection(
        execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    )
    await session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
    return MetricsSnapshot(
        runs=await _run_counts(session),
        durations=await _run_durations(session),
        charges=await _charge_totals(session),
        charge_conflicts=int(
            (await session.execute(select(func.count()).select_from(ChargeConflict))).scalar_one()
        ),
        model_calls_by_status={
            status: int(count)
            for status, count in await session.execute(
                select(ModelCall.status, func.count()).group_by(ModelCall.status)
            )
        },
        reconciliation=await _last_reconciliation(session),
    )


async def _run_counts(session: AsyncSession) -> list[RunCount]:
    rows = await session.execute(
        select(GraphRun.graph_id, GraphRun.status, func.count())
        .group_by(GraphRun.graph_id, GraphRun.status)
        .order_by(GraphRun.graph_id, GraphRun.status)
    )
    return [RunCount(graph_id, status, int(count)) for graph_id, status, count in rows]


async def _run_durations(session: AsyncSession) -> list[RunDurations]:
    seconds = func.greatest(func.extract("epoch", GraphRun.completed_at - GraphRun.started_at), 0)
    rows = await session.execute(
        select(
            GraphRun.graph_id,
            GraphRun.status,
            func.count(),
            func.coalesce(func.sum(seconds), 0),
            *(func.count().filter(seconds <= bound) for bound in DURATION_BUCKETS),
        )
        .where(GraphRun.started_at.is_not(None), GraphRun.completed_at.is_not(None))
        .group_by(GraphRun.graph_id, GraphRun.status)
        .order_by(GraphRun.graph_id, GraphRun.status)
    )
    return [
        RunDurations(
            graph_id=row[0],
            status=row[1],
            count=int(row[2]),
            sum_seconds=float(row[3]),
            buckets=tuple(int(n) for n in row[4:]),
        )
        for row in rows
    ]


async def _charge_totals(session: AsyncSession) -> list[ChargeTotals]:
    rows = await session.execute(
        select(
            ChargeReceipt.graph_id,
            ChargeReceipt.model,
            func.count(),
            func.coalesce(func.sum(ChargeReceipt.tokens_in), 0),
            func.coalesce(func.sum(ChargeReceipt.tokens_out), 0),
            func.coalesce(func.sum(ChargeReceipt.charged_credits), 0),
            func.coalesce(func.sum(ChargeReceipt.cost_usd), 0),
        )
        .group_by(ChargeReceipt.graph_id, ChargeReceipt.model)
        .order_by(ChargeReceipt.graph_id, ChargeReceipt.model)
    )
    return [
        ChargeTotals(
            graph_id=graph_id,
            model=model,
            calls=int(calls),
            tokens_in=int(tokens_in),
            tokens_out=int(tokens_out),
            credits=int(credits),
            cost_usd=Decimal(cost_usd),
        )
        for graph_id, model, calls, tokens_in, tokens_out, credits, cost_usd in rows
    ]


async def _last_reconciliation(session: AsyncSession) -> ReconciliationSummary | None:
    row = (
        await session.execute(
            select(
                func.extract("epoch", ReconciliationReport.finished_at),
                ReconciliationReport.accounts_checked,
                ReconciliationReport.accounts_with_drift,
                ReconciliationReport.flagged_calls,
            )
            .order_by(ReconciliationReport.id.desc())
            .limit(1)
        )
    ).one_or_none()
    if row is None:
        return None
    finished, checked, drift, flagged = row
    return ReconciliationSummary(
        finished_at_epoch=float(finished),
        accounts_checked=int(checked),
        accounts_with_drift=int(drift),
        flagged_calls=int(flagged),
    )
