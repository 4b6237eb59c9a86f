"""connections: encrypted credentials for tools; execution_grants.connections maps providers to them;
notify_url on runs and webhook triggers, and run_notifications (each attempt of a signed run-completion
notification)

Revision ID: 0008b_connections
Revises: 0008_webhook_deliveries
Create Date: 2026-12-02 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008b_connections"
down_revision: str | None = "0008_webhook_deliveries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("id", sa.Uuid(as_uuid=False), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("owner_user_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'active'"), nullable=False),
        sa.Column("settings", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("credentials_encrypted", sa.Text(), nullable=False),
        sa.Column(
            "created_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column(
            "updated_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("revoked_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('api_key','oauth2')", name=op.f("ck_connections_kind")),
        sa.CheckConstraint(
            "status IN ('active','needs_reauth','revoked')", name=op.f("ck_connections_status")
        ),
        sa.CheckConstraint("provider ~ '^[a-z0-9_]{1,40}$'", name=op.f("ck_connections_provider")),
        sa.ForeignKeyConstraint(
            ["owner_user_id"],
            ["users.id"],
            name=op.f("fk_connections_owner_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
    )
    op.create_index(
        "ix_connections_owner_created", "connections", ["owner_user_id", "created_at"], unique=False
    )
    op.add_column(
        "execution_grants",
        sa.Column(
            "connections",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )

    op.add_column("graph_runs", sa.Column("notify_url", sa.Text(), nullable=True))
    op.add_column("webhook_triggers", sa.Column("notify_url", sa.Text(), nullable=True))
    op.create_table(
        "run_notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("run_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column(
            "sent_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["graph_runs.run_id"],
            name=op.f("fk_run_notifications_run_id_graph_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_notifications")),
    )
    op.create_index("ix_run_notifications_run_id", "run_notifications", ["run_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_run_notifications_run_id", table_name="run_notifications")
    op.drop_table("run_notifications")
    op.drop_column("webhook_triggers", "notify_url")
    op.drop_column("graph_runs", "notify_url")
    op.drop_column("execution_grants", "connections")
    op.drop_index("ix_connections_owner_created", table_name="connections")
    op.drop_table("connections")
