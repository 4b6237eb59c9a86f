"""graph_runs.cancel_requested_at: a cancel asked for, before Temporal hears of it

A run whose graph finishes ends in its execution's last statement. A cancel asked for while the
graph's last step ran must still end the run ``cancelled`` (``POST /runs/{id}/cancel`` answers 202
only for a run it will cancel): the API marks the run first, and the execution's own end does not
move a marked run; the workflow, which receives the cancel, records it.

Revision ID: 0018_cancel_requested
Revises: 0017_runs_by_cost
Create Date: 2026-12-04 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_cancel_requested"
down_revision: str | None = "0017_runs_by_cost"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("graph_runs", sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("graph_runs", "cancel_requested_at")
