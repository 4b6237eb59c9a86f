"""webhook triggers: signed deliveries start graph runs under a grant; graph_runs.webhook_trigger_id

Revision ID: 0005_webhook_triggers
Revises: 0004_run_events
Create Date: 2026-11-25 10:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_webhook_triggers"
down_revision: str | None = "0004_run_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_triggers",
        sa.Column("id", sa.Uuid(as_uuid=False), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("owner_user_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("billing_account_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("grant_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("owns_grant", sa.Boolean(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("graph_id", sa.Text(), nullable=False),
        sa.Column("input", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("input_mapping", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column(
            "created_at", postgresql.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("deleted_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.CheckConstraint("source ~ '^[a-z0-9][a-z0-9_-]{0,62}$'", name=op.f("ck_webhook_triggers_source")),
        sa.ForeignKeyConstraint(
            ["billing_account_id"],
            ["billing_accounts.id"],
            name=op.f("fk_webhook_triggers_billing_account_id_billing_accounts"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["execution_grants.id"],
            name=op.f("fk_webhook_triggers_grant_id_execution_grants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["owner_user_id"],
            ["users.id"],
            name=op.f("fk_webhook_triggers_owner_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_triggers")),
    )
    op.create_index(
        "ix_webhook_triggers_active_source",
        "webhook_triggers",
        ["source"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ix_webhook_triggers_owner_created", "webhook_triggers", ["owner_user_id", "created_at"], unique=False
    )
    op.add_column("graph_runs", sa.Column("webhook_trigger_id", sa.Uuid(as_uuid=False), nullable=True))
    op.create_foreign_key(
        op.f("fk_graph_runs_webhook_trigger_id_webhook_triggers"),
        "graph_runs",
        "webhook_triggers",
        ["webhook_trigger_id"],
        ["id"],
        ondelete="RESTRICT",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_graph_runs_webhook_trigger_id_webhook_triggers"), "graph_runs", type_="foreignkey"
    )
    op.drop_column("graph_runs", "webhook_trigger_id")
    op.drop_index("ix_webhook_triggers_owner_created", table_name="webhook_triggers")
    op.drop_index(
        "ix_webhook_triggers_active_source",
        table_name="webhook_triggers",
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.drop_table("webhook_triggers")
