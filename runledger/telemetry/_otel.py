"""OpenTelemetry for a runledger process: one replay-safe ``TracerProvider``, installed as the global
provider on purpose (Temporal's ``OpenTelemetryPlugin`` requires it, and Langfuse must never install
one implicitly), plus the trace context a run is started in.

A run's spans share one trace whose id is derived from its run id (``contracts.ids.langfuse_trace_id``):
the API starts the workflow under a virtual root span of that trace (:func:`run_trace_context`), and
Temporal's plugin carries the context through the workflow into its activities. With no exporter
configured the provider has no span processor: spans are created and dropped, nothing is sent.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from temporalio.contrib.opentelemetry import OpenTelemetryPlugin, ReplaySafeTracerProvider
from temporalio.contrib.opentelemetry._id_generator import TemporalIdGenerator

from runledger.config import Settings
from runledger.contracts.ids import langfuse_trace_id

SERVICE = "runledger"
#: Instrumentation scope of the spans runledger creates itself.
TRACER_NAME = "runledger"

log = logging.getLogger(__name__)


@dataclass
class Tracing:
    """The process's tracer provider. ``provider`` is the SDK provider (Langfuse adds its span
    processor to it); ``replay_safe`` wraps it for use inside workflows and is the global provider
    when ``is_global``."""

    provider: SdkTracerProvider
    replay_safe: ReplaySafeTracerProvider
    is_global: bool
    #: The span processors added to ``provider`` (exporters), in order.
    processors: list[SpanProcessor] = field(default_factory=list)
    _otlp_endpoints: set[str] = field(default_factory=set)

    def add_span_processor(self, processor: SpanProcessor) -> None:
        self.provider.add_span_processor(processor)
        self.processors.append(processor)

    def export_to_otlp(self, endpoint: str) -> None:
        """Export every span to an OTLP/HTTP collector at ``endpoint`` (once per endpoint)."""
        if endpoint in self._otlp_endpoints:
            return
        # Imported here: the exporter pulls in requests and protobuf, needed only when configured.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        self.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
        self._otlp_endpoints.add(endpoint)

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        return self.provider.force_flush(timeout_millis)


def create_tracing() -> Tracing:
    """A new provider with a Temporal id generator (deterministic span ids inside workflows),
    not registered anywhere. Prefer :func:`install_tracing`."""
    generator = TemporalIdGenerator(RandomIdGenerator())
    provider = SdkTracerProvider(resource=Resource.create({SERVICE_NAME: SERVICE}), id_generator=generator)
    return Tracing(
        provider=provider, replay_safe=ReplaySafeTracerProvider(provider, generator), is_global=False
    )


_lock = threading.Lock()
_installed: Tracing | None = None


def install_tracing(settings: Settings) -> Tracing:
    """The process's tracing, created and registered as the global provider on first use, with the
    exporters ``settings`` configure. Idempotent: every later call returns the same object."""
    global _installed
    with _lock:
        if _installed is None:
            tracing = create_tracing()
            if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
                trace.set_tracer_provider(tracing.replay_safe)
                tracing.is_global = trace.get_tracer_provider() is tracing.replay_safe
            if not tracing.is_global:
                log.warning(
                    "another OpenTelemetry tracer provider is already global; runledger's spans use "
                    "their own provider and Temporal's spans are off"
                )
            _installed = tracing
        if settings.otel_exporter_otlp_endpoint:
            _installed.export_to_otlp(settings.otel_exporter_otlp_endpoint)
        return _installed


def temporal_plugins(settings: Settings) -> list[OpenTelemetryPlugin]:
    """Plugins for ``Client.connect``: workflow, activity and client spans that carry the trace
    context from the starter through the workflow into its activities. Workers built on the client
    inherit them. None unless ``settings.temporal_spans`` (the run tracer's own spans do not need
    them: they open the run's trace from its id)."""
    install_tracing(settings)
    if not settings.temporal_spans:
        return []
    if not isinstance(trace.get_tracer_provider(), ReplaySafeTracerProvider):
        return []  # the plugin refuses to build workers on any other global provider
    return [OpenTelemetryPlugin(add_temporal_spans=True)]


def run_root_span_id(run_id: str) -> str:
    """Span id of a run's virtual root: the 16 hex chars after the trace id in sha256(run_id)."""
    return hashlib.sha256(run_id.encode()).hexdigest()[32:48]


def run_root_span_context(run_id: str) -> SpanContext:
    return SpanContext(
        trace_id=int(langfuse_trace_id(run_id), 16),
        span_id=int(run_root_span_id(run_id), 16),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def in_run_trace(run_id: str) -> bool:
    """Whether the current span belongs to the run's trace (it does when the run was started under
    :func:`run_trace_context` by a traced client)."""
    current = trace.get_current_span().get_span_context()
    return current.is_valid and current.trace_id == int(langfuse_trace_id(run_id), 16)


@contextmanager
def run_trace_context(run_id: str) -> Iterator[None]:
    """Make the run's virtual root span current, so that whatever starts the run (the API's
    StartWorkflow span) opens the run's trace. Nothing is recorded or sent by this alone."""
    root = NonRecordingSpan(run_root_span_context(run_id))
    with trace.use_span(root, end_on_exit=False, record_exception=False, set_status_on_exception=False):
        yield
