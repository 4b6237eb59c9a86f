"""ORM models: the system of record for users, money and runs (SPEC §1, §3).

Money columns are BIGINT credits. ``charge_receipts`` and ``credit_ledger`` are append-only (a trigger
from the migrations rejects UPDATE and DELETE); ``graph_runs.status`` only moves forward (a trigger
enforces the transitions of SPEC §4).

The same metadata holds the models of ``db.trigger_models`` (grants, schedules, webhooks,
notifications, connections), ``db.catalog_models`` (graph catalog, prices) and ``db.ui_models``
(dashboard sessions, bulk operations).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    Numeric,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db import catalog_models, trigger_models, ui_models  # noqa: F401  (importing db.models registers every table)
from db.base import TZ, Base, created_now, uuid_pk


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = uuid_pk()
    name: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = created_now()


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = uuid_pk()
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    #: First characters of the key, shown to the user to tell keys apart; never enough to use it.
    key_prefix: Mapped[str] = mapped_column(Text, nullable=False)
    #: sha256 hex of the whole key. Keys are 256-bit random, so a fast hash is not brute-forceable.
    key_hash: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    #: The owner's label for the key (``runledger keys create --name``); null for a user's first key.
    name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_now()
    #: Set once; a revoked key authenticates nothing from the next request on.
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)


class BillingAccount(Base):
    __tablename__ = "billing_accounts"

    id: Mapped[str] = uuid_pk()
    owner_user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), nullable=False, unique=True
    )
    #: Cached sum of this account's credit_ledger amounts, updated in the same transaction as each row.
    balance_credits: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    created_at: Mapped[datetime] = created_now()


class GraphRun(Base):
    __tablename__ = "graph_runs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending','running','paused','success','error','cancelled','skipped')", name="status"
        ),
        CheckConstraint(
            "run_kind IN ('user_immediate','system_scheduled','system_webhook','replay')", name="run_kind"
        ),
        Index("ix_graph_runs_account_created", "billing_account_id", "created_at", "run_id"),
        # The listings ordered by cost (migration 0017).
        Index("ix_graph_runs_account_cost", "billing_account_id", "cost_credits", "run_id"),
        # The thread check of a start (migration 0016).
        Index(
            "ix_graph_runs_account_state_key",
            "billing_account_id",
            "state_key",
            postgresql_where=text("state_key IS NOT NULL"),
        ),
        ForeignKeyConstraint(
            ["graph_id", "graph_version"],
            ["graph_versions.graph_id", "graph_versions.version"],
            ondelete="RESTRICT",
        ),
        Index(
            "uq_graph_runs_schedule_slot",
            "schedule_id",
            "scheduled_for",
            unique=True,
            postgresql_where=text("schedule_id IS NOT NULL"),
        ),
    )

    run_id: Mapped[str] = mapped_column(Uuid(as_uuid=False), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    graph_id: Mapped[str] = mapped_column(Text, nullable=False)
    billing_account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="RESTRICT"), nullable=False
    )
    # Provenance: who asked, through what, under which reference.
    run_kind: Mapped[str] = mapped_column(Text, nullable=False)
    trigger_source: Mapped[str] = mapped_column(Text, nullable=False)
    trigger_ref: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), nullable=False)
    schedule_id: Mapped[str | None] = mapped_column(ForeignKey("schedules.id", ondelete="RESTRICT"))
    scheduled_for: Mapped[datetime | None] = mapped_column(TZ)
    replay_of: Mapped[str | None] = mapped_column(ForeignKey("graph_runs.run_id", ondelete="RESTRICT"))
    #: A replay that starts at this checkpoint of ``replay_of`` (its steps before it are copied).
    replay_from_checkpoint: Mapped[str | None] = mapped_column(Text)
    #: The execution grant a scheduled or webhook run executes and bills under (BILLING_VIA_GRANT).
    grant_id: Mapped[str | None] = mapped_column(ForeignKey("execution_grants.id", ondelete="RESTRICT"))
    #: The webhook trigger that started a ``system_webhook`` run (its delivery id is ``trigger_ref``).
    webhook_trigger_id: Mapped[str | None] = mapped_column(
        ForeignKey("webhook_triggers.id", ondelete="RESTRICT")
    )
    #: Where the run's end is announced, signed (``contracts.notify``); None: nowhere.
    notify_url: Mapped[str | None] = mapped_column(Text)
    #: Provider -> connection id given when the run was started (ids only, NO_SECRETS_IN_HISTORY);
    #: they take precedence over the grant's and the graph settings' (``activities.connections``).
    connections: Mapped[dict[str, str] | None] = mapped_column(JSONB(none_as_null=True))
    state_key: Mapped[str | None] = mapped_column(Text)
    #: The catalog version of the graph the run's (latest) execution ran, set when it starts.
    graph_version: Mapped[str | None] = mapped_column(Text)

    input: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'pending'"))
    pause_reason: Mapped[str | None] = mapped_column(Text)
    #: While paused for input: the values of the graph's pending ``interrupt()`` calls (for an
    #: approval, the tool call waiting for it).
    pending_input: Mapped[list[Any] | None] = mapped_column(JSONB)
    error_code: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    cost_credits: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    model_calls: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    #: Last sequence number handed to this run's events; bumped under the row lock, so sequences
    #: stay gap-free and ordered whichever worker writes.
    event_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    trace_id: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = created_now()
    started_at: Mapped[datetime | None] = mapped_column(TZ)
    completed_at: Mapped[datetime | None] = mapped_column(TZ)
    #: When a cancel was asked for (the API marks the run before it asks Temporal; migration 0018).
    cancel_requested_at: Mapped[datetime | None] = mapped_column(TZ)


class RunStartRequest(Base):
    """Permanent idempotency record of an API run start (no TTL, independent of Temporal retention)."""

    __tablename__ = "run_start_requests"

    billing_account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="RESTRICT"), primary_key=True
    )
    graph_id: Mapped[str] = mapped_column(Text, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(Text, primary_key=True)
    #: sha256 of the canonical JSON body: same key + other body is refused.
    request_hash: Mapped[str] = mapped_column(Text, nullable=False)
    run_id: Mapped[str] = mapped_column(
        ForeignKey("graph_runs.run_id", ondelete="RESTRICT", deferrable=True, initially="DEFERRED"),
        nullable=False,
        unique=True,
    )
    created_at: Mapped[datetime] = created_now()


class ModelCall(Base):
    """One model call of a run, recorded *before* the provider is asked (status ``pending``, holding
    its maximum cost in ``reserved_credits``) and closed as one of:

    - ``settled``: answered in full and charged; never made again (a retried execution replays it);
    - ``partial``: the stream broke after output arrived; charged for what arrived, made again;
    - ``failed``: refused before anything arrived (connection refused, 4xx); nothing billed;
    - ``unsettled``: it reached the provider but is not charged yet, ``error_message`` says why;
      ``charge`` holds the charge it owes when that is known (a failed charge write), which a later
      attempt or reconciliation writes under the same key;
    - ``flagged``: reconciliation could not settle it (usage unknown): for an operator."""

    __tablename__ = "model_calls"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending','settled','partial','failed','unsettled','flagged')", name="status"
        ),
        CheckConstraint("reserved_credits >= 0", name="reserved_credits_not_negative"),
        UniqueConstraint("run_id", "call_key", "attempt"),
        Index(
            "uq_model_calls_settled_call",
            "run_id",
            "call_key",
            unique=True,
            postgresql_where=text("status = 'settled'"),
        ),
        Index("ix_model_calls_pending", "created_at", postgresql_where=text("status = 'pending'")),
        Index("ix_model_calls_pending_run", "run_id", postgresql_where=text("status = 'pending'")),
        Index("ix_model_calls_unsettled", "run_id", postgresql_where=text("status = 'unsettled'")),
    )

    id: Mapped[str] = uuid_pk()
    run_id: Mapped[str] = mapped_column(ForeignKey("graph_runs.run_id", ondelete="RESTRICT"), nullable=False)
    #: Deterministic position of the call in the graph: ``{node}:{n}``.
    call_key: Mapped[str] = mapped_column(Text, nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    model: Mapped[str] = mapped_column(Text, nullable=False)
    request_hash: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'pending'"))
    #: runledger's id of the call (``ids.usage_unit_id``); the provider's id is beside it.
    usage_unit_id: Mapped[str | None] = mapped_column(Text)
    provider_response_id: Mapped[str | None] = mapped_column(Text)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    #: SQL NULL (not JSON null) when nothing is owed: ``IS NULL`` finds it.
    charge: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    #: The call's maximum cost, held while it is ``pending`` (BOUNDED_OVERSPEND).
    reserved_credits: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    receipt_id: Mapped[str | None] = mapped_column(ForeignKey("charge_receipts.id", ondelete="RESTRICT"))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_now()
    settled_at: Mapped[datetime | None] = mapped_column(TZ)


class ChargeReceipt(Base):
    """One immutable row per billable model call, paired 1:1 with a credit_ledger debit."""

    __tablename__ = "charge_receipts"
    __table_args__ = (
        UniqueConstraint("source_system", "source_reference"),
        Index("ix_charge_receipts_account_created", "billing_account_id", "created_at", "id"),
        Index("ix_charge_receipts_run", "run_id", "attempt"),
        CheckConstraint("charged_credits >= 0", name="charged_credits_not_negative"),
    )

    id: Mapped[str] = uuid_pk()
    billing_account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="RESTRICT"), nullable=False
    )
    run_id: Mapped[str] = mapped_column(ForeignKey("graph_runs.run_id", ondelete="RESTRICT"), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    #: runledger's id of the call; for receipts written before revision 0011 the provider's id.
    usage_unit_id: Mapped[str] = mapped_column(Text, nullable=False)
    #: The provider's own response id (NULL on receipts written before revision 0011).
    provider_response_id: Mapped[str | None] = mapped_column(Text)
    source_system: Mapped[str] = mapped_column(Text, nullable=False)
    source_reference: Mapped[str] = mapped_column(Text, nullable=False)
    graph_id: Mapped[str] = mapped_column(Text, nullable=False)
    model: Mapped[str] = mapped_column(Text, nullable=False)
    provider: Mapped[str | None] = mapped_column(Text)
    tokens_in: Mapped[int] = mapped_column(Integer, nullable=False)
    tokens_out: Mapped[int] = mapped_column(Integer, nullable=False)
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(24, 12), nullable=False)
    markup: Mapped[Decimal] = mapped_column(Numeric(10, 4), nullable=False)
    charged_credits: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = created_now()


class CreditLedgerEntry(Base):
    """Append-only signed movements of credits; ``balance_after`` is the account balance after it."""

    __tablename__ = "credit_ledger"
    __table_args__ = (
        UniqueConstraint("reason", "reference"),
        Index("ix_credit_ledger_account_id", "billing_account_id", "id"),
        CheckConstraint("reason IN ('topup','charge_receipt','adjustment')", name="reason"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    billing_account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="RESTRICT"), nullable=False
    )
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    balance_after: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    reference: Mapped[str] = mapped_column(Text, nullable=False)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("graph_runs.run_id", ondelete="RESTRICT"))
    receipt_id: Mapped[str | None] = mapped_column(
        ForeignKey("charge_receipts.id", ondelete="RESTRICT"), unique=True
    )
    created_at: Mapped[datetime] = created_now()


class ChargeConflict(Base):
    """A charge delivered again under an existing reference but with another amount. Recorded for
    an operator, never applied."""

    __tablename__ = "charge_conflicts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source_system: Mapped[str] = mapped_column(Text, nullable=False)
    source_reference: Mapped[str] = mapped_column(Text, nullable=False)
    existing_receipt_id: Mapped[str] = mapped_column(
        ForeignKey("charge_receipts.id", ondelete="RESTRICT"), nullable=False
    )
    existing_credits: Mapped[int] = mapped_column(BigInteger, nullable=False)
    attempted_credits: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = created_now()


class CreditReservation(Base):
    """A run's hold on its account's credits: made when the run is authorized, settled by each
    charge, released when the run ends. Available balance = balance - what open holds still hold."""

    __tablename__ = "credit_reservations"
    __table_args__ = (
        CheckConstraint("status IN ('open','released')", name="status"),
        CheckConstraint("reserved_credits >= 0 AND settled_credits >= 0", name="amounts_not_negative"),
        Index("ix_credit_reservations_open", "billing_account_id", postgresql_where=text("status = 'open'")),
    )

    id: Mapped[str] = uuid_pk()
    billing_account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="RESTRICT"), nullable=False
    )
    run_id: Mapped[str] = mapped_column(
        ForeignKey("graph_runs.run_id", ondelete="RESTRICT", deferrable=True, initially="DEFERRED"),
        nullable=False,
        unique=True,
    )
    reserved_credits: Mapped[int] = mapped_column(BigInteger, nullable=False)
    settled_credits: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'open'"))
    created_at: Mapped[datetime] = created_now()
    released_at: Mapped[datetime | None] = mapped_column(TZ)


class ReconciliationReport(Base):
    """What one reconciliation pass found: model calls it charged or flagged (with reasons), and per-account
    drift between the cached balance and the ledger's sum."""

    __tablename__ = "reconciliation_reports"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    finished_at: Mapped[datetime] = mapped_column(TZ, nullable=False)
    threshold_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    flagged_calls: Mapped[int] = mapped_column(Integer, nullable=False)
    accounts_checked: Mapped[int] = mapped_column(Integer, nullable=False)
    accounts_with_drift: Mapped[int] = mapped_column(Integer, nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)


class RunEvent(Base):
    """One event of a run's live stream, in per-run sequence order (the SSE ``id``). Written by the
    worker as the run progresses; read by ``GET /runs/{id}/events`` from any replica. Old runs'
    events are pruned by the reconciliation pass after the retention period."""

    __tablename__ = "run_events"

    run_id: Mapped[str] = mapped_column(ForeignKey("graph_runs.run_id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event: Mapped[str] = mapped_column(Text, nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = created_now()


class ToolEffect(Base):
    """The recorded result of a write tool's call (EXACTLY_ONCE_TOOL_EFFECTS), keyed by the tool
    effect key ``{run_id}/{tool_call_id}``: written once, before the graph goes on; a retried or
    resumed execution reads it instead of running the tool again. Never changed."""

    __tablename__ = "tool_effects"
    __table_args__ = (Index("ix_tool_effects_run", "run_id"),)

    effect_key: Mapped[str] = mapped_column(Text, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("graph_runs.run_id", ondelete="RESTRICT"), nullable=False)
    tool_id: Mapped[str] = mapped_column(Text, nullable=False)
    args: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    result: Mapped[Any] = mapped_column(JSONB, nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = created_now()
