"""The worker's process-local counters (what Postgres cannot show) and the endpoint that serves them."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from activities.events import on_publish_failure
from activities.metrics import counting_charge_failures
from runledger.cli.roles import _start_worker_metrics
from runledger.config import Settings
from tests.fakes.loopback import free_port


def sample(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    assert value is not None, name
    return value


def test_a_failed_charge_write_is_counted_and_raised() -> None:
    before = sample("runledger_worker_charge_write_failures_total")
    with pytest.raises(ConnectionError), counting_charge_failures():
        raise ConnectionError("the database went away at commit")
    with counting_charge_failures():
        pass
    assert sample("runledger_worker_charge_write_failures_total") == before + 1


def test_a_failed_event_publish_is_counted() -> None:
    before = sample("runledger_worker_run_event_publish_failures_total")
    on_publish_failure("run-1", RuntimeError("no connection"))
    assert sample("runledger_worker_run_event_publish_failures_total") == before + 1


def test_the_worker_serves_its_counters_on_its_port() -> None:
    port = free_port()
    server = _start_worker_metrics(Settings(worker_metrics_port=port))
    assert server is not None
    try:
        resp = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert resp.status_code == 200
        names = {family.name for family in text_string_to_metric_families(resp.text)}
        assert {
            "runledger_worker_charge_write_failures",
            "runledger_worker_run_event_publish_failures",
            "process_resident_memory_bytes",
        } <= names
        # The same port again cannot be bound: logged, and the worker runs on without it.
        assert _start_worker_metrics(Settings(worker_metrics_port=port)) is None
    finally:
        server.shutdown()
        server.server_close()
    assert _start_worker_metrics(Settings(worker_metrics_port=0)) is None
