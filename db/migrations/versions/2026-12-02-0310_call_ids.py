"""call ids and settlement: runledger's own usage_unit_id per model call, the provider's response id
beside it, calls charged for a partial answer or left unsettled with a reason, per-call reservations
(BOUNDED_OVERSPEND), and the model prices the worker publishes from LiteLLM for the API's preflight

Revision ID: 0011_call_ids
Revises: 0009_api_keys
Create Date: 2026-12-02 03:10:00

Released receipts are facts (append-only trigger): they are not rewritten. Their ``usage_unit_id``
stays what it was (the provider's id, for receipts written before this revision) and their new
``provider_response_id`` is NULL; only the mutable ``model_calls`` rows are backfilled.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_call_ids"
down_revision: str | None = "0009_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "'pending','settled','partial','failed','unsettled','flagged'"
OLD_STATUSES = "'pending','settled','failed','flagged'"


def upgrade() -> None:
    # A nullable column without a default: no row is rewritten, no UPDATE trigger fires.
    op.add_column("charge_receipts", sa.Column("provider_response_id", sa.Text(), nullable=True))
    op.add_column("model_calls", sa.Column("provider_response_id", sa.Text(), nullable=True))
    # The charge a call still owes (written when its charge write failed), replayed by a later
    # attempt or by reconciliation under the same idempotency key.
    op.add_column("model_calls", sa.Column("charge", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column(
        "model_calls",
        sa.Column("reserved_credits", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.execute("UPDATE model_calls SET provider_response_id = usage_unit_id WHERE usage_unit_id IS NOT NULL")
    op.drop_constraint(op.f("ck_model_calls_status"), "model_calls", type_="check")
    op.create_check_constraint("status", "model_calls", f"status IN ({STATUSES})")
    op.create_check_constraint("reserved_credits_not_negative", "model_calls", "reserved_credits >= 0")
    op.create_index(
        "ix_model_calls_unsettled",
        "model_calls",
        ["run_id"],
        unique=False,
        postgresql_where=sa.text("status = 'unsettled'"),
    )
    op.create_index(
        "ix_model_calls_pending_run",
        "model_calls",
        ["run_id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "model_prices",
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("input_usd_per_token", sa.Numeric(24, 15), nullable=False),
        sa.Column("output_usd_per_token", sa.Numeric(24, 15), nullable=False),
        sa.Column(
            "published_at",
            postgresql.TIMESTAMP(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("input_usd_per_token >= 0", name=op.f("ck_model_prices_input_not_negative")),
        sa.CheckConstraint("output_usd_per_token >= 0", name=op.f("ck_model_prices_output_not_negative")),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_model_prices")),
    )


def downgrade() -> None:
    op.drop_table("model_prices")
    op.drop_index("ix_model_calls_pending_run", table_name="model_calls")
    op.drop_index("ix_model_calls_unsettled", table_name="model_calls")
    op.drop_constraint(op.f("ck_model_calls_reserved_credits_not_negative"), "model_calls", type_="check")
    op.drop_constraint(op.f("ck_model_calls_status"), "model_calls", type_="check")
    op.execute("UPDATE model_calls SET status = 'flagged' WHERE status IN ('partial', 'unsettled')")
    op.create_check_constraint("status", "model_calls", f"status IN ({OLD_STATUSES})")
    op.drop_column("model_calls", "reserved_credits")
    op.drop_column("model_calls", "charge")
    op.drop_column("model_calls", "provider_response_id")
    op.drop_column("charge_receipts", "provider_response_id")
