"""An index for the run listings ordered by cost

``GET /runs?order=cost_desc`` (and ``cost_asc``, the dashboard's cost column) pages one account's
runs by ``(cost_credits, run_id)``. Without an index on that key the plan read every run of the
account and sorted them: a sequential scan of ``graph_runs`` once the table is large
(``tests/db/test_run_listing_plans.py`` checks each listing's plan with ``EXPLAIN``).

Revision ID: 0017_runs_by_cost
Revises: 0016_start_run_hold
Create Date: 2026-12-04 20:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017_runs_by_cost"
down_revision: str | None = "0016_start_run_hold"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_graph_runs_account_cost"


def upgrade() -> None:
    op.create_index(_INDEX, "graph_runs", ["billing_account_id", "cost_credits", "run_id"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="graph_runs")
