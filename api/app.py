"""The FastAPI application: one Database and one Temporal client per process, made in the lifespan
(or handed in by a test or the dev stack)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from api import ui
from api.boundary import install_boundary
from api.deps import AppState
from api.errors import install_error_handlers
from api.openapi import document_errors
from api.routes import (
    admin,
    api_keys,
    billing,
    connections,
    events,
    grants,
    health,
    me,
    metrics,
    openai_compat,
    run_steps,
    runs,
    schedules,
    ui_stream,
    webhooks,
)
from api.webhook_audit import RefusalBudget
from db.notify import RunEventListener
from db.secrets import SecretBox
from db.session import Database
from runledger.config import Settings
from runledger.telemetry import temporal_plugins


def create_app(
    settings: Settings, *, database: Database | None = None, temporal: Client | None = None
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_db = database is None
        db = database or Database(settings.require_database_url())
        client = temporal or await Client.connect(
            settings.require_temporal_address(),
            namespace=settings.temporal_namespace,
            # StartWorkflow spans, whose context the workflow and its activities continue.
            plugins=temporal_plugins(settings),
        )
        listener = RunEventListener(db.url)
        listener.start()
        app.state.runledger = AppState(
            settings=settings,
            database=db,
            temporal=client,
            events=listener,
            secrets=SecretBox.from_setting(settings.secret_keys.get_secret_value())
            if settings.secret_keys
            else None,
            webhook_refusals=RefusalBudget(settings.webhook_refused_log_per_minute),
        )
        try:
            yield
        finally:
            await listener.stop()
            if own_db:
                await db.dispose()

    app = FastAPI(
        title="runledger",
        version="0.1.0",
        description="Durable LangGraph runs on Temporal, every model call billed into a Postgres ledger.",
        lifespan=lifespan,
        # FastAPI's own request and operation spans go to the global tracer provider, which the
        # process always installs (the run tracer's spans): without an OTLP exporter they are made
        # for nothing (py-spy of the API under a burst of starts: 3 % of its CPU).
        telemetry={"tracing": settings.otel_exporter_otlp_endpoint is not None},
    )
    install_error_handlers(app, html_error_page=ui.render.error_page)
    install_boundary(app, max_body_bytes=settings.max_body_bytes)
    for router in (
        health.router,
        metrics.router,
        admin.router,
        me.router,
        api_keys.router,
        runs.router,
        run_steps.router,
        events.router,
        billing.router,
        grants.router,
        schedules.router,
        ui_stream.router,
        openai_compat.router,
        webhooks.router,
        connections.router,
    ):
        app.include_router(router)
    ui.install(app)
    document_errors(app)
    return app
