"""``GET /metrics``: the cluster-wide business numbers, read from Postgres at scrape time, in the
Prometheus text format (parsed here with prometheus-client's own parser)."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from activities.reconcile import reconcile_once
from db.session import Database
from tests.helpers import Tenant, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
GRAPH = "langgraph:brief"


async def scrape(api: httpx.AsyncClient) -> Samples:
    resp = await api.get("/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(resp.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over the series of ``name`` that carry ``labels`` (whatever their other labels)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


async def test_metrics_report_runs_calls_tokens_credits_and_drift(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    before = await scrape(api)
    run = await wait_for_run(api, user, (await start_run(api, user, graph_id=GRAPH)).json()["run_id"])
    assert run["status"] == "success", run
    assert run["model_calls"] == 3
    report = await reconcile_once(database, threshold_seconds=3600)
    after = await scrape(api)

    assert value(after, "runledger_metrics_database_up") == 1
    # Runs by graph and status: every status is present for a known graph, zeros included.
    success = value(after, "runledger_runs", graph_id=GRAPH, status="success")
    assert success >= value(before, "runledger_runs", graph_id=GRAPH, status="success") + 1
    assert ("runledger_runs", frozenset({("graph_id", GRAPH), ("status", "paused")})) in after
    # The run's duration landed in the histogram (buckets are cumulative; +Inf is the count).
    count = value(after, "runledger_run_duration_seconds_count", graph_id=GRAPH, status="success")
    assert count == success
    assert value(
        after, "runledger_run_duration_seconds_bucket", graph_id=GRAPH, status="success", le="+Inf"
    ) == (count)
    assert value(after, "runledger_run_duration_seconds_sum", graph_id=GRAPH, status="success") > 0

    # Billed model calls, tokens and credits, from the receipts.
    def grew(name: str, **labels: str) -> float:
        return total(after, name, graph_id=GRAPH, **labels) - total(before, name, graph_id=GRAPH, **labels)

    calls = grew("runledger_model_calls_total")
    credits = grew("runledger_credits_charged_total")
    tokens_in = grew("runledger_model_tokens_total", direction="in")
    tokens_out = grew("runledger_model_tokens_total", direction="out")
    assert calls >= run["model_calls"]
    assert credits >= run["cost_credits"] > 0
    assert tokens_in > 0
    assert tokens_out > 0
    assert total(after, "runledger_model_cost_usd_total", graph_id=GRAPH) > 0
    assert ("runledger_charge_conflicts_total", frozenset()) in after
    for status in ("pending", "settled", "failed", "flagged"):
        assert ("runledger_model_call_records", frozenset({("status", status)})) in after
    assert value(after, "runledger_model_call_records", status="settled") >= calls
    # Drift and flagged calls come from the last reconciliation report.
    assert value(after, "runledger_reconciliation_accounts_with_drift") == report.accounts_with_drift == 0
    assert value(after, "runledger_reconciliation_flagged_calls") == report.flagged_calls
    assert value(after, "runledger_reconciliation_accounts_checked") == report.accounts_checked > 0
    assert value(after, "runledger_reconciliation_last_finished_timestamp_seconds") > 0
    # The API process's own standard collectors ride along.
    assert value(after, "process_resident_memory_bytes") > 0


async def test_metrics_need_no_auth_and_speak_openmetrics(api: httpx.AsyncClient) -> None:
    resp = await api.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/openmetrics-text")
    assert resp.text.rstrip().endswith("# EOF")
    assert "runledger_runs" in resp.text
