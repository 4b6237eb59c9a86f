"""``GET /metrics``: Prometheus exposition of the cluster-wide business numbers (no auth, SPEC §4).

The worker and the API are separate processes, so the totals come from Postgres, the system of
record, at scrape time (:mod:`db.metrics`); every API replica answers the same numbers. The worker's
process-local counters (charge-write and event-publish failures) are on the worker's own port
(``RUNLEDGER_WORKER_METRICS_PORT``).

Each scrape reads one snapshot, then renders it through a collector on a registry of its own, with
this process's standard process/platform/GC collectors: nothing is kept between scrapes. When
Postgres cannot be read the answer is still 200, with ``runledger_metrics_database_up 0`` and no
business series, so the failure is a value that can be alerted on rather than a gap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from api.deps import AppState, StateDep
from db import metrics as db_metrics
from db.metrics import DURATION_BUCKETS, MODEL_CALL_STATUSES, MetricsSnapshot
from runledger.contracts.runs import RunStatus

router = APIRouter(tags=["health"])
log = structlog.get_logger(__name__)

#: A scrape that cannot read Postgres within this many seconds reports the database down.
SNAPSHOT_TIMEOUT_SECONDS = 8.0


class SnapshotCollector(Collector):
    """Renders one :class:`MetricsSnapshot` as metric families (``None``: the read failed)."""

    def __init__(self, snapshot: MetricsSnapshot | None, read_seconds: float) -> None:
        self._snapshot = snapshot
        self._read_seconds = read_seconds

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot
        yield GaugeMetricFamily(
            "runledger_metrics_database_up",
            "1 when this scrape could read the business numbers from Postgres, else 0.",
            value=0 if snap is None else 1,
        )
        yield GaugeMetricFamily(
            "runledger_metrics_snapshot_seconds",
            "Time this scrape spent reading the business numbers from Postgres.",
            value=self._read_seconds,
        )
        if snap is None:
            return
        yield from _runs(snap)
        yield from _charges(snap)
        yield from _model_calls(snap)
        yield from _reconciliation(snap)


def _runs(snap: MetricsSnapshot) -> Iterator[Metric]:
    counts = GaugeMetricFamily(
        "runledger_runs",
        "Graph runs by graph and current status (every run ever started; from Postgres).",
        labels=["graph_id", "status"],
    )
    found = {(row.graph_id, row.status): row.runs for row in snap.runs}
    # Every status of every known graph, zeros included, so a series does not vanish when it empties.
    for graph_id in sorted({graph_id for graph_id, _ in found}):
        for status in RunStatus:
            counts.add_metric([graph_id, status.value], found.get((graph_id, status.value), 0))
    yield counts
    durations = HistogramMetricFamily(
        "runledger_run_duration_seconds",
        "Duration of completed runs (completed_at - started_at), over all completed runs, by graph and "
        "final status.",
        labels=["graph_id", "status"],
    )
    for row in snap.durations:
        buckets = [
            (str(float(bound)), float(n)) for bound, n in zip(DURATION_BUCKETS, row.buckets, strict=True)
        ]
        buckets.append(("+Inf", float(row.count)))
        durations.add_metric([row.graph_id, row.status], buckets, sum_value=row.sum_seconds)
    yield durations


def _charges(snap: MetricsSnapshot) -> Iterator[Metric]:
    calls = CounterMetricFamily(
        "runledger_model_calls",
        "Billed model calls (charge receipts) by graph and model.",
        labels=["graph_id", "model"],
    )
    tokens = CounterMetricFamily(
        "runledger_model_tokens",
        "Tokens of billed model calls by graph, model and direction (in: prompt, out: completion).",
        labels=["graph_id", "model", "direction"],
    )
    credits = CounterMetricFamily(
        "runledger_credits_charged",
        "Credits charged to accounts for model calls (sum of charge receipts; 10,000,000 credits = 1 USD).",
        labels=["graph_id", "model"],
    )
    cost = CounterMetricFamily(
        "runledger_model_cost_usd",
        "Provider cost in USD of billed model calls, before markup.",
        labels=["graph_id", "model"],
    )
    for row in snap.charges:
        calls.add_metric([row.graph_id, row.model], row.calls)
        tokens.add_metric([row.graph_id, row.model, "in"], row.tokens_in)
        tokens.add_metric([row.graph_id, row.model, "out"], row.tokens_out)
        credits.add_metric([row.graph_id, row.model], row.credits)
        cost.add_metric([row.graph_id, row.model], float(row.cost_usd))
    yield from (calls, tokens, credits, cost)
    yield CounterMetricFamily(
        "runledger_charge_conflicts",
        "Charges delivered again under an existing reference with another amount (recorded, never applied).",
        value=snap.charge_conflicts,
    )


def _model_calls(snap: MetricsSnapshot) -> Iterator[Metric]:
    records = GaugeMetricFamily(
        "runledger_model_call_records",
        "Recorded model calls by status: pending (in flight, or stuck until reconciliation flags it), "
        "settled, partial (a broken stream charged for what arrived), failed (refused before anything "
        "arrived, unbilled), unsettled (reached the provider, not charged yet: the run's next attempt or "
        "reconciliation charges it when its charge is known, else flags it), flagged (may have been "
        "billed by the provider without a receipt; an operator settles it).",
        labels=["status"],
    )
    for status in MODEL_CALL_STATUSES:
        records.add_metric([status], snap.model_calls_by_status.get(status, 0))
    yield records


def _reconciliation(snap: MetricsSnapshot) -> Iterator[Metric]:
    report = snap.reconciliation
    if report is None:  # no pass has run yet: absent, so absent() can alert on it
        return
    yield GaugeMetricFamily(
        "runledger_reconciliation_accounts_with_drift",
        "Accounts whose cached balance differs from their ledger sum, in the last reconciliation report.",
        value=report.accounts_with_drift,
    )
    yield GaugeMetricFamily(
        "runledger_reconciliation_flagged_calls",
        "Model calls flagged by the last reconciliation pass (stale pending, or unsettled with usage unknown).",
        value=report.flagged_calls,
    )
    yield GaugeMetricFamily(
        "runledger_reconciliation_accounts_checked",
        "Accounts checked by the last reconciliation pass.",
        value=report.accounts_checked,
    )
    yield GaugeMetricFamily(
        "runledger_reconciliation_last_finished_timestamp_seconds",
        "When the last reconciliation pass finished (Unix time).",
        value=report.finished_at_epoch,
    )


async def read_snapshot(state: AppState) -> tuple[MetricsSnapshot | None, float]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(SNAPSHOT_TIMEOUT_SECONDS), state.database.transaction() as session:
            snap: MetricsSnapshot | None = await db_metrics.snapshot(session)
    except Exception as exc:
        log.warning("metrics_snapshot_failed", error=f"{type(exc).__name__}: {exc}")
        snap = None
    return snap, time.perf_counter() - started


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, state: StateDep) -> Response:
    """Prometheus text format (OpenMetrics when the scraper asks for it)."""
    snap, seconds = await read_snapshot(state)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snap, seconds))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(GC_COLLECTOR)
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(registry), media_type=content_type)
