"""ORM models of the dashboard: sign-in sessions and bulk operations with their items (the system
of record of ``db.models``, split by concern; the same metadata)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from db.base import TZ, Base, created_now


class UiSession(Base):
    """A signed-in dashboard browser. The cookie holds a random token; only its SHA-256 is stored,
    so a leaked table signs nobody in. ``key_hash`` is the hash of the API key (or admin token) it
    signed in with: every request re-resolves it, so a revoked key ends its sessions at once."""

    __tablename__ = "ui_sessions"
    __table_args__ = (Index("ix_ui_sessions_expires", "expires_at"),)

    token_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    key_hash: Mapped[str] = mapped_column(Text, nullable=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, nullable=False)
    created_at: Mapped[datetime] = created_now()
    expires_at: Mapped[datetime] = mapped_column(TZ, nullable=False)


class BulkOperation(Base):
    """A dashboard bulk cancel or replay. Its id is minted when the confirmation is shown and sent
    back by the confirm form, so a second click finds the operation already claimed (idempotent)."""

    __tablename__ = "bulk_operations"
    __table_args__ = (
        CheckConstraint("action IN ('cancel','replay')", name="action"),
        CheckConstraint("status IN ('proposed','running','done')", name="status"),
    )

    id: Mapped[str] = mapped_column(Uuid(as_uuid=False), primary_key=True)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    #: The account the operation is confined to; NULL for an admin's (every account).
    billing_account_id: Mapped[str | None] = mapped_column(
        ForeignKey("billing_accounts.id", ondelete="RESTRICT")
    )
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'proposed'"))
    estimated_credits: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: The filter (or selection) the runs were chosen by, for the progress view.
    description: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = created_now()
    started_at: Mapped[datetime | None] = mapped_column(TZ)
    finished_at: Mapped[datetime | None] = mapped_column(TZ)


class BulkOperationItem(Base):
    """One run of a bulk operation and what happened to it."""

    __tablename__ = "bulk_operation_items"
    __table_args__ = (
        CheckConstraint(
            "outcome IN ('pending','working','cancelled','replayed','unchanged','failed')", name="outcome"
        ),
    )

    operation_id: Mapped[str] = mapped_column(
        ForeignKey("bulk_operations.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("graph_runs.run_id", ondelete="RESTRICT"), nullable=False)
    outcome: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("'pending'"))
    new_run_id: Mapped[str | None] = mapped_column(Uuid(as_uuid=False))
    message: Mapped[str | None] = mapped_column(Text)
    #: When the item was last claimed or decided: a run's action is claimed (``working``) before
    #: it is taken, so two executors never act on one run.
    updated_at: Mapped[datetime | None] = mapped_column(TZ)
