"""webhook senders and audit: trigger kind and events, secrets encrypted at rest, webhook_deliveries

Existing triggers become ``standard`` (Standard Webhooks) triggers; their plain-text secrets are
encrypted with the newest key of RUNLEDGER_SECRET_KEYS (required only when such rows exist) and the
plain column is dropped (SECRETS_ENCRYPTED_AT_REST).

Revision ID: 0008_webhook_deliveries
Revises: 0010_dashboard
Create Date: 2026-12-02 03:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

from db.secrets import SecretBox
from runledger.config import Settings

revision: str = "0008_webhook_deliveries"
down_revision: str | None = "0010_dashboard"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _box() -> SecretBox:
    """The keys handed to ``db.migrate.upgrade``, else RUNLEDGER_SECRET_KEYS."""
    keys = context.config.attributes.get("secret_keys")
    if keys is None:
        configured = Settings().secret_keys
        keys = configured.get_secret_value() if configured else None
    return SecretBox.from_setting(keys)


def _reencode(select_sql: str, update_sql: str, convert: str) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text(select_sql)).all()
    if not rows:
        return
    box = _box()
    fn = box.encrypt if convert == "encrypt" else box.decrypt
    for row_id, value in rows:
        bind.execute(sa.text(update_sql), {"id": row_id, "value": fn(value)})


def upgrade() -> None:
    op.add_column(
        "webhook_triggers",
        sa.Column("kind", sa.Text(), server_default=sa.text("'standard'"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_webhook_triggers_kind"), "webhook_triggers", "kind IN ('github','stripe','standard')"
    )
    op.add_column("webhook_triggers", sa.Column("events", postgresql.ARRAY(sa.Text()), nullable=True))
    op.add_column("webhook_triggers", sa.Column("secret_encrypted", sa.Text(), nullable=True))
    _reencode(
        "SELECT id, secret FROM webhook_triggers",
        "UPDATE webhook_triggers SET secret_encrypted = :value WHERE id = :id",
        "encrypt",
    )
    op.alter_column("webhook_triggers", "secret_encrypted", nullable=False)
    op.drop_column("webhook_triggers", "secret")

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("trigger_id", sa.Uuid(as_uuid=False), nullable=True),
        sa.Column("delivery_key", sa.Text(), nullable=True),
        sa.Column("event", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=False),
        sa.Column("run_ids", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("body_bytes", sa.BigInteger(), nullable=False),
        sa.Column("body_sha256", sa.Text(), nullable=True),
        sa.Column(
            "received_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "outcome IN ('accepted','duplicate','filtered','invalid_signature','stale_timestamp',"
            "'payload_too_large','invalid_payload','grant_refused')",
            name=op.f("ck_webhook_deliveries_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["trigger_id"],
            ["webhook_triggers.id"],
            name=op.f("fk_webhook_deliveries_trigger_id_webhook_triggers"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index("ix_webhook_deliveries_source_id", "webhook_deliveries", ["source", "id"], unique=False)
    op.create_index(
        "ix_webhook_deliveries_trigger_id", "webhook_deliveries", ["trigger_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_trigger_id", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_source_id", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.add_column("webhook_triggers", sa.Column("secret", sa.Text(), nullable=True))
    _reencode(
        "SELECT id, secret_encrypted FROM webhook_triggers",
        "UPDATE webhook_triggers SET secret = :value WHERE id = :id",
        "decrypt",
    )
    op.alter_column("webhook_triggers", "secret", nullable=False)
    op.drop_column("webhook_triggers", "secret_encrypted")
    op.drop_column("webhook_triggers", "events")
    op.drop_constraint(op.f("ck_webhook_triggers_kind"), "webhook_triggers", type_="check")
    op.drop_column("webhook_triggers", "kind")
