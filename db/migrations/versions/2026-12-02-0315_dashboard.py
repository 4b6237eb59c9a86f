"""dashboard: ui_sessions (hashed session tokens, server-side expiry), bulk_operations and their items

Revision ID: 0010_dashboard
Revises: 0011_call_ids
Create Date: 2026-12-02 03:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_dashboard"
down_revision: str | None = "0011_call_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = postgresql.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("token_hash", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_ui_sessions")),
    )
    op.create_index("ix_ui_sessions_expires", "ui_sessions", ["expires_at"])
    op.create_table(
        "bulk_operations",
        sa.Column("id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("billing_account_id", sa.Uuid(as_uuid=False), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'proposed'"), nullable=False),
        sa.Column("estimated_credits", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, server_default=sa.text("now()"), nullable=False),
        sa.Column("started_at", TZ, nullable=True),
        sa.Column("finished_at", TZ, nullable=True),
        sa.CheckConstraint("action IN ('cancel','replay')", name=op.f("ck_bulk_operations_action")),
        sa.CheckConstraint("status IN ('proposed','running','done')", name=op.f("ck_bulk_operations_status")),
        sa.ForeignKeyConstraint(
            ["billing_account_id"],
            ["billing_accounts.id"],
            name=op.f("fk_bulk_operations_billing_account_id_billing_accounts"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_operations")),
    )
    op.create_table(
        "bulk_operation_items",
        sa.Column("operation_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Uuid(as_uuid=False), nullable=False),
        sa.Column("outcome", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("new_run_id", sa.Uuid(as_uuid=False), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("updated_at", TZ, nullable=True),
        sa.CheckConstraint(
            "outcome IN ('pending','working','cancelled','replayed','unchanged','failed')",
            name=op.f("ck_bulk_operation_items_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["bulk_operations.id"],
            name=op.f("fk_bulk_operation_items_operation_id_bulk_operations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["graph_runs.run_id"],
            name=op.f("fk_bulk_operation_items_run_id_graph_runs"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("operation_id", "position", name=op.f("pk_bulk_operation_items")),
    )


def downgrade() -> None:
    op.drop_table("bulk_operation_items")
    op.drop_table("bulk_operations")
    op.drop_index("ix_ui_sessions_expires", table_name="ui_sessions")
    op.drop_table("ui_sessions")
