"""Constructing the worker's run tracer from settings, and the Langfuse URLs the API shows."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from runledger.config import Settings
from runledger.contracts.scrub import Scrubber
from runledger.telemetry._otel import Tracing, install_tracing
from runledger.telemetry._runs import RunTracer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

LANGFUSE_CLOUD = "https://cloud.langfuse.com"

log = logging.getLogger(__name__)


def langfuse_base_url(settings: Settings) -> str:
    return settings.langfuse_host or LANGFUSE_CLOUD


def langfuse_trace_url(settings: Settings, trace_id: str) -> str | None:
    """The run's trace in the Langfuse UI (Langfuse redirects ``/trace/{id}`` to its project page);
    None when Langfuse is not configured."""
    if not settings.langfuse_enabled:
        return None
    return f"{langfuse_base_url(settings)}/trace/{trace_id}"


def known_secrets(settings: Settings) -> list[str]:
    """This process's configured secrets, removed verbatim from everything traced."""
    found = [
        secret.get_secret_value()
        for secret in (settings.model_api_key, settings.admin_token, settings.langfuse_secret_key)
        if secret is not None
    ]
    if settings.database_url:
        password = urlsplit(settings.database_url).password
        if password:
            found.append(password)
    return found


def build_run_tracer(
    settings: Settings, *, tracing: Tracing | None = None, span_exporter: SpanExporter | None = None
) -> RunTracer:
    """The worker's run tracer. Without both Langfuse keys no Langfuse client is constructed (and
    nothing is sent); with them, one client on this process's tracer provider. ``span_exporter``
    replaces the export to the Langfuse host (tests use an in-memory exporter)."""
    tracing = tracing or install_tracing(settings)
    scrubber = Scrubber(known_secrets(settings))
    public_key, secret_key = settings.langfuse_public_key, settings.langfuse_secret_key
    if public_key is None or secret_key is None:
        return RunTracer(tracer_provider=tracing.provider, scrubber=scrubber)
    from langfuse import Langfuse

    def mask(*, data: Any, **kwargs: Any) -> Any:
        return scrubber(data)

    client = Langfuse(
        public_key=public_key.get_secret_value(),
        secret_key=secret_key.get_secret_value(),
        base_url=langfuse_base_url(settings),
        # Ours, never a global one Langfuse would install itself.
        tracer_provider=tracing.provider,
        span_exporter=span_exporter,
        mask=mask,
    )
    log.info("Langfuse tracing on: %s", langfuse_base_url(settings))
    return RunTracer(langfuse=client, tracer_provider=tracing.provider, scrubber=scrubber)
