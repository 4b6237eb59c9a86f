"""HTTP request and response shapes (snake_case JSON), distinct from the contracts dataclasses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from api.params import Timestamp
from runledger.contracts.runs import RunKind, RunStatus


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateUserRequest(Strict):
    name: str = Field(min_length=1, max_length=200)


class CreateUserResponse(BaseModel):
    user_id: str
    billing_account_id: str
    api_key: str


class TopupRequest(Strict):
    amount_credits: int = Field(gt=0, le=10**15)
    reference: str = Field(min_length=1, max_length=200)


class LedgerEntryOut(BaseModel):
    id: int
    billing_account_id: str
    amount: int
    balance_after: int
    reason: str
    reference: str
    run_id: str | None
    receipt_id: str | None
    created_at: datetime


class MeResponse(BaseModel):
    user_id: str
    billing_account_id: str
    balance_credits: int
    #: Credits held by open run reservations, and what is left for new runs.
    reserved_credits: int = 0
    available_credits: int = 0


class GraphOut(BaseModel):
    graph_id: str
    description: str
    tool_ids: list[str]
    input_schema: dict[str, Any]
    #: Hash of the graph's source files and settings (what a run's ``graph_version`` names).
    version: str
    #: ``builtin``, or the path of the project's ``langgraph.json``.
    source: str
    write_tools: list[str]
    approval_tools: list[str]
    #: The preflight estimate's number of model calls.
    max_model_calls: int
    #: The graph's own model; null: the worker's default model.
    model: str | None


class StartRunRequest(Strict):
    input: dict[str, Any]
    state_key: str | None = Field(default=None, min_length=1, max_length=200)
    #: Announce the run's end here, signed (``contracts.notify``; the host must be allow-listed).
    notify_url: str | None = Field(default=None, min_length=1, max_length=2000)
    #: Tool provider -> connection id (the caller's own): takes precedence over the graph's settings.
    connections: dict[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,40}$")], str] | None = Field(
        default=None, max_length=20
    )


class ReplayRequest(Strict):
    # A replay from a checkpoint continues the original's state: the schema says it takes no input.
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"not": {"required": ["from_checkpoint_id", "input"]}}
    )

    #: Start at this checkpoint of the original (``GET /runs/{id}/checkpoints``): its state is copied,
    #: the steps before it are not run or paid again. Absent: start over from the input.
    from_checkpoint_id: str | None = Field(default=None, min_length=1, max_length=200)
    #: Start over with this input instead of the original's (not with ``from_checkpoint_id``).
    input: dict[str, Any] | None = None
    #: Answer the estimate (200) and start nothing.
    dry_run: StrictBool = False

    @model_validator(mode="after")
    def _checkpoint_or_input(self) -> ReplayRequest:
        if {"from_checkpoint_id", "input"} <= self.model_fields_set:
            raise ValueError("a replay from a checkpoint continues the original's state: it takes no input")
        return self


class ReplayEstimate(BaseModel):
    estimated_credits: int
    #: Model calls of the original before the checkpoint, reused rather than made again.
    reused_calls: int


class ResumeRequest(Strict):
    #: What the graph's ``interrupt()`` returns; for an approval ``{"approved": bool, "reason"?: str}``.
    value: Any


class CheckpointOut(BaseModel):
    checkpoint_id: str
    step: int
    #: The node that ran in this super-step (several are joined by ``,``); ``nodes`` lists them.
    node: str
    nodes: list[str]
    created_at: datetime
    cost_credits_so_far: int


class CheckpointListResponse(BaseModel):
    checkpoints: list[CheckpointOut]


class RunLinks(BaseModel):
    self: str
    events: str
    charges: str
    temporal_ui: str
    langfuse: str | None = None


class StartRunResponse(BaseModel):
    run_id: str
    workflow_id: str
    status: RunStatus
    links: RunLinks


class ReservationOut(BaseModel):
    reserved_credits: int
    settled_credits: int
    status: str


class RunOut(BaseModel):
    run_id: str
    workflow_id: str
    graph_id: str
    billing_account_id: str
    status: RunStatus
    pause_reason: str | None
    #: While ``awaiting_input`` / ``awaiting_approval``: what the graph asked (its ``interrupt()``
    #: values; for an approval ``{"kind": "runledger.approval", "tool_id", "args", "call_id"}``).
    pending_input: list[Any] | None = None
    run_kind: RunKind
    trigger_source: str
    trigger_ref: str | None
    requested_by: str
    schedule_id: str | None
    scheduled_for: datetime | None
    state_key: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    input: dict[str, Any]
    output: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    cost_credits: int
    model_calls: int
    trace_id: str
    replay_of: str | None
    #: The catalog version of the graph the run executed (null until its execution starts).
    graph_version: str | None = None
    links: RunLinks
    reservation: ReservationOut | None = None


class RunListResponse(BaseModel):
    runs: list[RunOut]
    next_cursor: str | None


class ReceiptOut(BaseModel):
    id: str
    run_id: str
    attempt: int
    #: runledger's id of the model call (the same across the call's attempts).
    usage_unit_id: str
    #: The provider's own response id (null on receipts written before call ids were runledger's).
    provider_response_id: str | None = None
    source_system: str
    source_reference: str
    graph_id: str
    model: str
    provider: str | None
    tokens_in: int
    tokens_out: int
    cost_usd: str
    markup: str
    charged_credits: int
    created_at: datetime


class ReceiptListResponse(BaseModel):
    receipts: list[ReceiptOut]
    next_cursor: str | None


class LedgerListResponse(BaseModel):
    entries: list[LedgerEntryOut]
    next_cursor: str | None


class CreateGrantRequest(Strict):
    scopes: list[str] = Field(min_length=1, max_length=50)
    expires_at: Timestamp | None = None
    max_credits: int | None = Field(default=None, ge=0, le=10**15)
    #: Tool provider -> connection id: the credentials this grant's runs' tools act with.
    connections: dict[str, str] = Field(default_factory=dict, max_length=20)


class GrantOut(BaseModel):
    grant_id: str
    billing_account_id: str
    scopes: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    max_credits: int | None
    spent_credits: int
    connections: dict[str, str] = Field(default_factory=dict)
    created_at: datetime


class GrantListResponse(BaseModel):
    grants: list[GrantOut]


class ReconciliationReportOut(BaseModel):
    report_id: int
    started_at: datetime
    finished_at: datetime
    threshold_seconds: int
    flagged_calls: int
    accounts_checked: int
    accounts_with_drift: int
    details: dict[str, Any]


class OAuth2Credentials(Strict):
    access_token: str = Field(min_length=1, max_length=8192)
    refresh_token: str | None = Field(default=None, min_length=1, max_length=8192)
    #: When the access token expires; absent: only a 401 from the service makes the worker refresh.
    expires_at: datetime | None = None
    token_url: str = Field(min_length=1, max_length=2000)
    client_id: str = Field(min_length=1, max_length=500)
    client_secret: str = Field(min_length=1, max_length=8192)
    scope: str | None = Field(default=None, max_length=2000)


class CreateConnectionRequest(Strict):
    #: The provider a tool declares, e.g. ``github``.
    provider: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    kind: Literal["api_key", "oauth2"]
    name: str | None = Field(default=None, max_length=200)
    #: The service's API base URL (GitHub Enterprise, a test server); absent: the provider's default.
    api_base: str | None = Field(default=None, max_length=2000)
    #: ``kind=api_key``: the static token.
    api_key: str | None = Field(default=None, min_length=1, max_length=8192)
    #: ``kind=oauth2``.
    oauth2: OAuth2Credentials | None = None


class ConnectionOut(BaseModel):
    """Never a secret: tokens and client secrets are write-only."""

    connection_id: str
    provider: str
    kind: str
    name: str | None
    status: str
    api_base: str | None
    token_url: str | None
    client_id: str | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ConnectionListResponse(BaseModel):
    connections: list[ConnectionOut]


class NotifySecretOut(BaseModel):
    #: The Standard Webhooks secret that signs this account's run-completion notifications.
    secret: str


class RunNotificationOut(BaseModel):
    attempt: int
    url: str
    http_status: int | None
    error: str | None
    delivered: bool
    sent_at: datetime


class RunNotificationListResponse(BaseModel):
    notifications: list[RunNotificationOut]


class CreateApiKeyRequest(Strict):
    #: A label to tell keys apart (``runledger keys list``).
    name: str | None = Field(default=None, min_length=1, max_length=200)


class ApiKeyOut(BaseModel):
    key_id: str
    name: str | None
    #: The key's first characters, to recognise it; never enough to use it.
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    #: The key itself: shown once, here; only its hash is stored.
    api_key: str


class ApiKeyListResponse(BaseModel):
    api_keys: list[ApiKeyOut]
