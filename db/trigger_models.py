"""ORM models of what starts runs and what runs reach out to: execution grants, schedules, webhook
triggers and their deliveries, run-completion notifications, tool connections (the system of record
of ``db.models``, split by concern; the same metadata)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import TZ, Base, created_now, uuid_pk


class ExecutionGrant(Base):
    """Lets runs that no user session starts execute graphs and bill an account, within scopes,
    a lifetime and an optional spend cap. Revocation is soft: the row stays for audit."""

    __tablename__ = "execution_grants"
    __table_args__ = (
        CheckConstraint("max_credits IS NULL OR max_credits >= 0", name="max_credits_not_negative"),
        Index("ix_execution_grants_user_created", "user_id", "created_at"),
    )

    id: Mapped[str] = uuid_pk()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), nullable=False)
    billing_account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="RESTRICT"), nullable=False
    )
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(TZ)
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)
    max_credits: Mapped[int | None] = mapped_column(BigInteger)
    #: Credits charged under this grant, updated by the ledger writer in each charge's transaction.
    spent_credits: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    #: Tool provider -> connection id: the credentials the tools of this grant's runs act with.
    connections: Mapped[dict[str, str]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'"))
    created_at: Mapped[datetime] = created_now()


class Schedule(Base):
    """A cron schedule of a graph. Deleting it keeps the row (``deleted_at``) so its runs keep their
    history; the Temporal schedule ``schedule:{id}`` is the executor."""

    __tablename__ = "schedules"
    __table_args__ = (
        CheckConstraint(
            "overlap IN ('skip','buffer_one','buffer_all','cancel_other','terminate_other','allow_all')",
            name="overlap",
        ),
        CheckConstraint("catchup_window_seconds >= 10", name="catchup_window"),
        Index("ix_schedules_owner_created", "owner_user_id", "created_at"),
    )

    id: Mapped[str] = uuid_pk()
    owner_user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), nullable=False)
    billing_account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="RESTRICT"), nullable=False
    )
    grant_id: Mapped[str] = mapped_column(
        ForeignKey("execution_grants.id", ondelete="RESTRICT"), nullable=False
    )
    #: True when the grant was minted for this schedule: deleting the schedule then revokes it.
    owns_grant: Mapped[bool] = mapped_column(Boolean, nullable=False)
    graph_id: Mapped[str] = mapped_column(Text, nullable=False)
    input: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    cron: Mapped[str] = mapped_column(Text, nullable=False)
    timezone: Mapped[str] = mapped_column(Text, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    overlap: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'skip'"))
    catchup_window_seconds: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("3600"))
    temporal_schedule_id: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    #: Every run of this schedule is announced here when it ends (``contracts.notify``).
    notify_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_now()
    updated_at: Mapped[datetime] = mapped_column(TZ, nullable=False, server_default=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column(TZ)


class WebhookTrigger(Base):
    """A graph run for every signed delivery to ``POST /api/v1/webhooks/{source}``, billed under its
    grant. ``kind`` is the sender's signing scheme (``contracts.webhooks``). Verifying an HMAC needs the
    secret itself, so it is stored encrypted (``db.secrets``, SECRETS_ENCRYPTED_AT_REST), never plain.
    Deleting the trigger keeps the row (``deleted_at``) so its runs keep their provenance."""

    __tablename__ = "webhook_triggers"
    __table_args__ = (
        CheckConstraint("source ~ '^[a-z0-9][a-z0-9_-]{0,62}$'", name="source"),
        CheckConstraint("kind IN ('github','stripe','standard')", name="kind"),
        Index("ix_webhook_triggers_active_source", "source", postgresql_where=text("deleted_at IS NULL")),
        Index("ix_webhook_triggers_owner_created", "owner_user_id", "created_at"),
    )

    id: Mapped[str] = uuid_pk()
    owner_user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), nullable=False)
    billing_account_id: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="RESTRICT"), nullable=False
    )
    grant_id: Mapped[str] = mapped_column(
        ForeignKey("execution_grants.id", ondelete="RESTRICT"), nullable=False
    )
    #: True when the grant was minted for this trigger: deleting the trigger then revokes it.
    owns_grant: Mapped[bool] = mapped_column(Boolean, nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    graph_id: Mapped[str] = mapped_column(Text, nullable=False)
    input: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    #: Graph input field -> RFC 6901 JSON pointer into the delivery's payload.
    input_mapping: Mapped[dict[str, str]] = mapped_column(JSONB, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'standard'"))
    #: Event names that start a run (GitHub ``X-GitHub-Event`` or ``event.action``, Stripe ``type``,
    #: Standard Webhooks payload ``type``); NULL: every event.
    events: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    #: The signing secret as a Fernet token (``db.secrets``).
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    #: Every run of this trigger is announced here when it ends (``contracts.notify``).
    notify_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_now()
    deleted_at: Mapped[datetime | None] = mapped_column(TZ)


class Connection(Base):
    """A credential a tool uses to act on an external service for its owner (``api_key``: a static
    token; ``oauth2``: access and refresh tokens, refreshed by the worker). The secrets are one
    Fernet token (``db.secrets``) of a JSON object; ``settings`` holds only what is not secret."""

    __tablename__ = "connections"
    __table_args__ = (
        CheckConstraint("kind IN ('api_key','oauth2')", name="kind"),
        CheckConstraint("status IN ('active','needs_reauth','revoked')", name="status"),
        CheckConstraint("provider ~ '^[a-z0-9_]{1,40}$'", name="provider"),
        Index("ix_connections_owner_created", "owner_user_id", "created_at"),
    )

    id: Mapped[str] = uuid_pk()
    owner_user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), nullable=False)
    provider: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'active'"))
    #: Not secret: ``api_base``, and for oauth2 ``token_url``, ``client_id``, ``scope``, ``expires_at``.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    credentials_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = created_now()
    updated_at: Mapped[datetime] = mapped_column(TZ, nullable=False, server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(TZ)


class RunNotification(Base):
    """One attempt to POST a run's signed completion notification (``contracts.notify``)."""

    __tablename__ = "run_notifications"
    __table_args__ = (Index("ix_run_notifications_run_id", "run_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("graph_runs.run_id", ondelete="CASCADE"), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    delivered: Mapped[bool] = mapped_column(Boolean, nullable=False)
    sent_at: Mapped[datetime] = mapped_column(TZ, nullable=False, server_default=func.now())


class WebhookDelivery(Base):
    """The trigger audit log: one row per delivery and matched trigger (accepted, duplicate,
    filtered, refused after the signature), or one row without a trigger for a delivery refused
    before any trigger was matched. Never the secret, never the body: only its size and sha256."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(
            "outcome IN ('accepted','duplicate','filtered','invalid_signature','stale_timestamp',"
            "'payload_too_large','invalid_payload','grant_refused','insufficient_credits','unavailable')",
            name="outcome",
        ),
        Index("ix_webhook_deliveries_source_id", "source", "id"),
        Index("ix_webhook_deliveries_trigger_id", "trigger_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    trigger_id: Mapped[str | None] = mapped_column(ForeignKey("webhook_triggers.id", ondelete="RESTRICT"))
    #: The sender's delivery key (SPEC §2), when the delivery carried one.
    delivery_key: Mapped[str | None] = mapped_column(Text)
    event: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(Text, nullable=False)
    http_status: Mapped[int] = mapped_column(Integer, nullable=False)
    run_ids: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    body_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: Hex sha256 of the body; NULL when it was refused before it was read.
    body_sha256: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(TZ, nullable=False, server_default=func.now())
