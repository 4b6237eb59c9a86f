"""Tracing fixtures: the session's Temporal connection with the OpenTelemetry plugin, and an in-memory
exporter on the process's tracer provider. Nothing here exports over the network."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from runledger.config import Settings
from runledger.telemetry import install_tracing, temporal_plugins


def own_queue(settings: Settings, **update: object) -> Settings:
    """The session settings on a task queue of their own, never exporting to a collector."""
    return settings.model_copy(
        update={"temporal_task_queue": f"test-{uuid.uuid4()}", "otel_exporter_otlp_endpoint": None, **update}
    )


@pytest.fixture
def traced_client(client: Client, settings: Settings) -> Client:
    """The session's connection as ``runledger.temporal.connect`` makes it with Temporal's spans on."""
    return Client(
        client.service_client,
        namespace=client.namespace,
        plugins=temporal_plugins(own_queue(settings, temporal_tracing="on")),
    )


@pytest.fixture
def otel_spans(settings: Settings) -> Iterator[InMemorySpanExporter]:
    """Every span that ends on the process's provider during the test."""
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    install_tracing(own_queue(settings)).add_span_processor(processor)
    yield exporter
    processor.shutdown()  # the provider keeps the processor; a shut-down one exports nothing
