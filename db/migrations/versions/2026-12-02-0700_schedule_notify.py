"""notify_url on schedules (every run a schedule starts is announced there); the connections a run
was started with (``graph_runs.connections``: provider -> connection id, ids only); and the delivery
outcomes ``insufficient_credits`` (a trigger whose account cannot cover the run's estimate) and
``unavailable`` (answered 503: no worker has published the model's price yet)

Revision ID: 0013_schedule_notify
Revises: 0007_tool_effects
Create Date: 2026-12-02 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_schedule_notify"
down_revision: str | None = "0007_tool_effects"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OUTCOMES = (
    "'accepted','duplicate','filtered','invalid_signature','stale_timestamp',"
    "'payload_too_large','invalid_payload','grant_refused'"
)


def upgrade() -> None:
    op.add_column("schedules", sa.Column("notify_url", sa.Text(), nullable=True))
    op.add_column(
        "graph_runs", sa.Column("connections", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.drop_constraint(op.f("ck_webhook_deliveries_outcome"), "webhook_deliveries", type_="check")
    op.create_check_constraint(
        op.f("ck_webhook_deliveries_outcome"),
        "webhook_deliveries",
        f"outcome IN ({_OUTCOMES},'insufficient_credits','unavailable')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_webhook_deliveries_outcome"), "webhook_deliveries", type_="check")
    op.execute(
        "UPDATE webhook_deliveries SET outcome = 'grant_refused' WHERE outcome = 'insufficient_credits'"
    )
    op.execute("DELETE FROM webhook_deliveries WHERE outcome = 'unavailable'")
    op.create_check_constraint(
        op.f("ck_webhook_deliveries_outcome"), "webhook_deliveries", f"outcome IN ({_OUTCOMES})"
    )
    op.drop_column("graph_runs", "connections")
    op.drop_column("schedules", "notify_url")
