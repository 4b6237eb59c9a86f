"""HTTP request and response shapes of the run triggers: schedules and webhook triggers (their
deliveries), snake_case JSON like ``api.schemas``, whose ``Strict`` base they share."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from api.schemas import RunOut, Strict
from runledger.contracts.runs import RunStatus
from runledger.contracts.schedules import Overlap
from runledger.contracts.webhooks import Kind


class CreateScheduleRequest(Strict):
    graph_id: str
    input: dict[str, Any]
    cron: str = Field(min_length=1, max_length=200)
    timezone: str = Field(min_length=1, max_length=64)
    enabled: bool = True
    overlap: Overlap = Overlap.SKIP
    catchup_window_seconds: int = Field(default=3600, ge=10, le=31_536_000)
    grant_id: str | None = None
    #: Announce every run's end here, signed (``contracts.notify``; the host must be allow-listed).
    notify_url: str | None = Field(default=None, min_length=1, max_length=2000)


class PatchScheduleRequest(Strict):
    input: dict[str, Any] | None = None
    cron: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    enabled: bool | None = None
    overlap: Overlap | None = None
    catchup_window_seconds: int | None = Field(default=None, ge=10, le=31_536_000)
    #: A new URL for the schedule's runs' notifications; ``null`` stops them (absent: unchanged).
    notify_url: str | None = Field(default=None, min_length=1, max_length=2000)


class ScheduleOut(BaseModel):
    schedule_id: str
    graph_id: str
    input: dict[str, Any]
    cron: str
    timezone: str
    enabled: bool
    overlap: Overlap
    catchup_window_seconds: int
    grant_id: str
    temporal_schedule_id: str
    notify_url: str | None = None
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None = None


class ScheduleDetail(ScheduleOut):
    paused: bool
    next_run_times: list[datetime]
    recent_runs: list[RunOut]
    temporal_ui: str


class ScheduleListResponse(BaseModel):
    schedules: list[ScheduleOut]


class TriggerResponse(BaseModel):
    schedule_id: str
    triggered: bool


class CreateWebhookTriggerRequest(Strict):
    source: str = Field(min_length=1, max_length=63)
    graph_id: str
    #: Fixed graph input; each ``input_mapping`` field is set on top of it from the payload.
    input: dict[str, Any] = Field(default_factory=dict)
    #: Graph input field -> RFC 6901 JSON pointer into the delivery's JSON payload.
    input_mapping: dict[str, str] = Field(default_factory=dict)
    grant_id: str | None = None
    #: The sender's signing scheme (``contracts.webhooks``).
    kind: Kind = "standard"
    #: The sender's own secret (Stripe's ``whsec_...``, the one typed into GitHub); generated when absent.
    secret: str | None = Field(default=None, max_length=255)
    #: Event names that start a run; others are recorded ``filtered``. Absent: every event.
    events: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, min_length=1, max_length=100
    )
    #: Announce every run's end here, signed (``contracts.notify``; the host must be allow-listed).
    notify_url: str | None = Field(default=None, min_length=1, max_length=2000)


class WebhookTriggerOut(BaseModel):
    trigger_id: str
    source: str
    kind: Kind
    events: list[str] | None
    graph_id: str
    input: dict[str, Any]
    input_mapping: dict[str, str]
    grant_id: str
    #: Where the sender posts its deliveries.
    url: str
    notify_url: str | None = None
    created_at: datetime


class WebhookTriggerCreated(WebhookTriggerOut):
    #: The signing secret; shown once, here.
    secret: str


class WebhookTriggerListResponse(BaseModel):
    webhook_triggers: list[WebhookTriggerOut]


class WebhookRunOut(BaseModel):
    trigger_id: str
    run_id: str
    status: RunStatus
    #: False when an earlier delivery with this id already started the run.
    created: bool


class WebhookDeliveryResponse(BaseModel):
    delivery_id: str
    #: The event as recorded (GitHub ``X-GitHub-Event``, Stripe ``type``, the payload's ``type``).
    event: str | None = None
    runs: list[WebhookRunOut]
    #: Triggers that matched the signature but not the event (or a GitHub ping): no run.
    filtered_trigger_ids: list[str] = Field(default_factory=list)


class WebhookDeliveryOut(BaseModel):
    #: The audit row's id (the cursor orders by it).
    id: int
    #: The sender's delivery key (SPEC §2); null when the delivery carried none.
    delivery_id: str | None
    source: str
    trigger_id: str | None
    event: str | None
    received_at: datetime
    outcome: str
    http_status: int
    run_ids: list[str]
    body_bytes: int
    body_sha256: str | None


class WebhookDeliveryListResponse(BaseModel):
    webhook_deliveries: list[WebhookDeliveryOut]
    next_cursor: str | None
