"""Tracing, wired once per process: OpenTelemetry (one replay-safe provider, Temporal's plugin, an
optional OTLP/HTTP exporter) and Langfuse (a trace per run, id derived from the run id).

Contract: imports only ``config`` and ``contracts`` of ours. Off and network-silent unless configured
(``LANGFUSE_PUBLIC_KEY``/``LANGFUSE_SECRET_KEY``, ``OTEL_EXPORTER_OTLP_ENDPOINT``). Langfuse is
imported only when it is configured. Everything that leaves the process is scrubbed of secrets.
Workflow code uses none of this.
"""

from runledger.contracts.scrub import REDACTED, Scrubber, is_secret_key, scrub
from runledger.telemetry._history import ScrubbingFailureConverter, scrubbing_client
from runledger.telemetry._otel import (
    Tracing,
    create_tracing,
    in_run_trace,
    install_tracing,
    run_root_span_context,
    run_root_span_id,
    run_trace_context,
    temporal_plugins,
)
from runledger.telemetry._runs import OUTCOME, ModelCall, Observed, RunRef, RunTracer, graph_tag, node_tag
from runledger.telemetry._setup import build_run_tracer, known_secrets, langfuse_trace_url

__all__ = [
    "OUTCOME",
    "REDACTED",
    "ModelCall",
    "Observed",
    "RunRef",
    "RunTracer",
    "Scrubber",
    "ScrubbingFailureConverter",
    "Tracing",
    "build_run_tracer",
    "create_tracing",
    "graph_tag",
    "in_run_trace",
    "install_tracing",
    "is_secret_key",
    "known_secrets",
    "langfuse_trace_url",
    "node_tag",
    "run_root_span_context",
    "run_root_span_id",
    "run_trace_context",
    "scrub",
    "scrubbing_client",
    "temporal_plugins",
]
