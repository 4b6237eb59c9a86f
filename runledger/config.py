"""Process settings (SPEC §5), read once from the environment.

Contract: ``Settings`` is constructed in a composition root (CLI command, worker, API lifespan,
test fixture) and passed down. Nothing reads the environment anywhere else, and no setting travels in
a workflow or activity input.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

OFFLINE_MODEL = "runledger/offline"


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str | None = Field(default=None, validation_alias=_env("DATABASE_URL"))
    temporal_address: str | None = Field(default=None, validation_alias=_env("TEMPORAL_ADDRESS"))
    temporal_namespace: str = Field(default="default", validation_alias=_env("TEMPORAL_NAMESPACE"))
    temporal_task_queue: str = Field(default="runledger", validation_alias=_env("TEMPORAL_TASK_QUEUE"))

    data_dir: Path = Field(default=Path(".runledger"), validation_alias=_env("RUNLEDGER_DATA_DIR"))
    api_host: str = Field(default="127.0.0.1", validation_alias=_env("RUNLEDGER_API_HOST"))
    api_port: int = Field(default=8000, validation_alias=_env("RUNLEDGER_API_PORT"))
    temporal_port: int = Field(default=7233, validation_alias=_env("RUNLEDGER_TEMPORAL_PORT"))
    temporal_ui_port: int = Field(default=8233, validation_alias=_env("RUNLEDGER_TEMPORAL_UI_PORT"))
    #: Base URL of the Temporal web UI used in run links; derived from the UI port when unset.
    temporal_ui_url: str | None = Field(default=None, validation_alias=_env("RUNLEDGER_TEMPORAL_UI_URL"))

    admin_token: SecretStr | None = Field(default=None, validation_alias=_env("RUNLEDGER_ADMIN_TOKEN"))
    #: Fernet keys that encrypt stored secrets (webhook secrets, connection credentials), comma-
    #: separated, newest first (``db.secrets``); generated into the data dir by the dev stack.
    secret_keys: SecretStr | None = Field(default=None, validation_alias=_env("RUNLEDGER_SECRET_KEYS"))
    #: Derives each billing account's secret for signed run-completion notifications
    #: (``contracts.notify``); generated into the data dir by the dev stack. Unset: no notify_url.
    notify_signing_key: SecretStr | None = Field(
        default=None, validation_alias=_env("RUNLEDGER_NOTIFY_SIGNING_KEY")
    )
    #: Hosts a notify_url may name: comma-separated names, ``*.example.com`` for subdomains.
    notify_allowed_hosts: str = Field(default="", validation_alias=_env("RUNLEDGER_NOTIFY_ALLOWED_HOSTS"))
    #: Refused webhook deliveries recorded in the audit log per source per minute, per API process
    #: (beyond it a refusal is only counted in a metric); accepted ones are always recorded.
    webhook_refused_log_per_minute: int = Field(
        default=120, ge=0, validation_alias=_env("RUNLEDGER_WEBHOOK_REFUSED_LOG_PER_MINUTE")
    )
    #: How long a dashboard sign-in lasts (server-side: the session row expires, whatever the cookie).
    ui_session_seconds: int = Field(
        default=8 * 3600, ge=60, validation_alias=_env("RUNLEDGER_UI_SESSION_SECONDS")
    )

    markup: Decimal = Field(default=Decimal("2.0"), validation_alias=_env("RUNLEDGER_MARKUP"))
    default_model: str = Field(default=OFFLINE_MODEL, validation_alias=_env("RUNLEDGER_DEFAULT_MODEL"))
    #: Optional OpenAI-compatible endpoint and key for the configured model (read by the worker only).
    model_api_base: str | None = Field(default=None, validation_alias=_env("RUNLEDGER_MODEL_API_BASE"))
    model_api_key: SecretStr | None = Field(default=None, validation_alias=_env("RUNLEDGER_MODEL_API_KEY"))
    #: Extra prices for LiteLLM's model registry, as JSON in LiteLLM's model_cost format.
    model_registry: dict[str, Any] | None = Field(
        default=None, validation_alias=_env("RUNLEDGER_MODEL_REGISTRY")
    )
    #: A graph project's ``langgraph.json``, whose graphs the worker serves besides the built-in ones
    #: (SPEC §7; ``--graphs PATH`` on ``runledger up|worker``). Read by the worker only.
    graphs_config: Path | None = Field(default=None, validation_alias=_env("RUNLEDGER_GRAPHS_CONFIG"))
    model_timeout_seconds: float = Field(
        default=60.0, validation_alias=_env("RUNLEDGER_MODEL_TIMEOUT_SECONDS")
    )
    #: How long a run paused for credits waits for a top-up before it ends ``insufficient_credits``.
    credit_wait_seconds: int = Field(
        default=86_400, ge=1, validation_alias=_env("RUNLEDGER_CREDIT_WAIT_SECONDS")
    )
    #: How long a run paused by ``interrupt()`` or a tool approval waits for ``POST /runs/{id}/resume``
    #: before it ends ``error`` / ``input_timeout``.
    input_wait_seconds: int = Field(
        default=86_400, ge=1, validation_alias=_env("RUNLEDGER_INPUT_WAIT_SECONDS")
    )
    #: Pending model calls older than this are flagged by reconciliation.
    #: Events of runs that finished more than this many days ago are pruned by reconciliation.
    event_retention_days: int = Field(
        default=30, ge=1, validation_alias=_env("RUNLEDGER_EVENT_RETENTION_DAYS")
    )
    reconcile_after_seconds: int = Field(
        default=3_600, ge=0, validation_alias=_env("RUNLEDGER_RECONCILE_AFTER_SECONDS")
    )
    #: Unfinished runs older than this are checked against Temporal by the run sweeper of the
    #: reconciliation pass (lost starts are started, runs of ended workflows finalized).
    sweep_after_seconds: int = Field(
        default=120, ge=0, validation_alias=_env("RUNLEDGER_SWEEP_AFTER_SECONDS")
    )
    #: The largest request body the API reads (JSON endpoints; 413 ``payload_too_large`` above it,
    #: refused before the body is parsed). The webhook receiver keeps its own 1 MiB limit.
    max_body_bytes: int = Field(
        default=1_048_576, ge=1_024, le=1_073_741_824, validation_alias=_env("RUNLEDGER_MAX_BODY_BYTES")
    )
    #: Credits granted to the demo user of the dev stack (10,000,000 credits = 1 USD).
    demo_credits: int = Field(default=10_000_000, ge=0, validation_alias=_env("RUNLEDGER_DEMO_CREDITS"))
    #: Worker capacity (Temporal slots). Activities are the graph executions in flight: each waits on
    #: its model provider most of the time, so one worker holds many (``make bench-latency``).
    worker_max_activities: int = Field(
        default=1_000, ge=1, le=100_000, validation_alias=_env("RUNLEDGER_WORKER_MAX_ACTIVITIES")
    )
    worker_max_workflow_tasks: int = Field(
        default=100, ge=1, le=10_000, validation_alias=_env("RUNLEDGER_WORKER_MAX_WORKFLOW_TASKS")
    )
    #: Local activities are the short database steps of a run (authorize, pause, finalize).
    worker_max_local_activities: int = Field(
        default=200, ge=1, le=10_000, validation_alias=_env("RUNLEDGER_WORKER_MAX_LOCAL_ACTIVITIES")
    )
    #: ``resource_based``: graph executions get their slots from Temporal's resource-based supplier
    #: (up to ``worker_max_activities``, while memory and CPU stay under the targets below), workflow
    #: tasks and local activities their fixed counts; ``fixed``: the three counts above. Chosen by
    #: ``make bench-latency``: with 1,000 fixed execution slots a CPU-bound worker took more
    #: executions than it could begin, Temporal timed them out before their first heartbeat and
    #: retried them (82 of 600, one with its call at the provider); with the supplier, none.
    worker_tuner: Literal["fixed", "resource_based"] = Field(
        default="resource_based", validation_alias=_env("RUNLEDGER_WORKER_TUNER")
    )
    worker_target_memory: float = Field(
        default=0.8, gt=0, le=1, validation_alias=_env("RUNLEDGER_WORKER_TARGET_MEMORY")
    )
    worker_target_cpu: float = Field(
        default=0.9, gt=0, le=1, validation_alias=_env("RUNLEDGER_WORKER_TARGET_CPU")
    )
    #: Workflows kept in the worker's sticky cache (a run in flight that falls out is replayed).
    #: Measured (``bench.latency_bench --scale 3000``): with 3,000 runs open and 2,000 cached,
    #: Temporal took back 713 executions (11 calls left unsettled) and a run cost 85 ms of worker
    #: CPU; with room for all of them, none and 68 ms, for ~80 KB of memory per cached run.
    worker_max_cached_workflows: int = Field(
        default=5_000, ge=0, validation_alias=_env("RUNLEDGER_WORKER_MAX_CACHED_WORKFLOWS")
    )
    log_level: str = Field(default="info", validation_alias=_env("RUNLEDGER_LOG_LEVEL"))
    #: One JSON object per log line (structlog) for the worker, the API and the admin commands;
    #: false gives structlog's human console format.
    log_json: bool = Field(default=True, validation_alias=_env("RUNLEDGER_LOG_JSON"))
    #: The worker's own Prometheus endpoint (process-local counters); 0 turns it off.
    worker_metrics_port: int = Field(
        default=9464, ge=0, le=65535, validation_alias=_env("RUNLEDGER_WORKER_METRICS_PORT")
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1", validation_alias=_env("RUNLEDGER_WORKER_METRICS_HOST")
    )
    #: Langfuse tracing: both keys turn it on (the worker sends a trace per run); unset, no Langfuse
    #: client is constructed and nothing is sent. The host defaults to Langfuse Cloud.
    langfuse_public_key: SecretStr | None = Field(default=None, validation_alias=_env("LANGFUSE_PUBLIC_KEY"))
    langfuse_secret_key: SecretStr | None = Field(default=None, validation_alias=_env("LANGFUSE_SECRET_KEY"))
    langfuse_host: str | None = Field(
        default=None, validation_alias=AliasChoices("LANGFUSE_BASE_URL", "LANGFUSE_HOST")
    )
    #: OTLP/HTTP collector for OpenTelemetry spans (Temporal's and the runs'); unset, none are exported.
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias=_env("OTEL_EXPORTER_OTLP_ENDPOINT")
    )

    #: Temporal's own spans (workflow, activity and client spans carrying a run's trace context from
    #: the API through the workflow into its activities). ``auto`` turns them on exactly when spans
    #: go somewhere (an OTLP endpoint or Langfuse): without an exporter they would be made and
    #: dropped, and the interceptor costs every workflow task and activity CPU (``make bench``).
    temporal_tracing: Literal["auto", "on", "off"] = Field(
        default="auto", validation_alias=_env("RUNLEDGER_TEMPORAL_TRACING")
    )

    @field_validator("markup")
    @classmethod
    def _markup_at_least_one(cls, value: Decimal) -> Decimal:
        if value < 1:
            raise ValueError("RUNLEDGER_MARKUP must be >= 1")
        return value

    @field_validator("langfuse_public_key", "langfuse_secret_key", "graphs_config", mode="before")
    @classmethod
    def _blank_key_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("langfuse_host", "otel_exporter_otlp_endpoint")
    @classmethod
    def _http_base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _langfuse_keys_together(self) -> Settings:
        if (self.langfuse_public_key is None) != (self.langfuse_secret_key is None):
            raise ValueError("LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY must be set together")
        return self

    @property
    def langfuse_enabled(self) -> bool:
        return self.langfuse_public_key is not None and self.langfuse_secret_key is not None

    @property
    def temporal_spans(self) -> bool:
        """Whether Temporal's OpenTelemetry plugin is installed on this process's client."""
        if self.temporal_tracing == "auto":
            return self.otel_exporter_otlp_endpoint is not None or self.langfuse_enabled
        return self.temporal_tracing == "on"

    @property
    def worker_db_pool_size(self) -> int:
        """The worker's ORM pool, derived from its slots: the slower steps of a run (a refusal's
        end, a pause, a resume) use it, so more slots get more connections, up to a bound (no
        overflow: a burst queues in the worker, not as backends in Postgres)."""
        return max(10, min(20, (self.worker_max_activities + self.worker_max_local_activities) // 60))

    @property
    def worker_statement_pool_size(self) -> int:
        """The worker's single-statement pool, derived from its execution slots: every step of a
        run's hot path is one statement on it (the authorization, each model call's reservation
        and charge, the batched events, the run's end). ``make bench-latency`` (600 runs in
        flight): with 2 connections a run spent 3.1 to 3.6 s between its authorization and its
        first call, and 2.7 s between its last charge and its end; with 8, 1.2 to 2.5 s and 0.8
        to 2.9 s (four runs; this box's speed varies by a third between runs). Statements on one
        hot account row still queue here rather than in Postgres beyond this bound. A worker opens
        at most ``worker_db_pool_size`` + this + 10 (checkpoints) connections (README, production
        topology)."""
        return max(2, min(8, self.worker_max_activities // 125))

    @property
    def temporal_ui_base(self) -> str:
        return self.temporal_ui_url or f"http://127.0.0.1:{self.temporal_ui_port}"

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set (only `runledger up` starts an embedded Postgres)")
        return self.database_url

    def require_temporal_address(self) -> str:
        if not self.temporal_address:
            raise RuntimeError(
                "TEMPORAL_ADDRESS is not set (only `runledger up` starts a Temporal dev server)"
            )
        return self.temporal_address
