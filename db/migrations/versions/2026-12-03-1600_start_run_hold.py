"""start_run_hold(): a started run's hold and its thread check as one call

An API start held the run's credits (``reserve_run_hold``), then, for a run on a ``state_key``
thread, looked for another unfinished run of that thread, then inserted the run row and its
``pending`` event: four round trips, the last three under the account's lock. This function makes
the hold and, under the lock the hold took, the thread check (a new snapshot: VOLATILE, so a run
committed while it waited for the lock is seen); ``db.lifecycle.record_start`` inserts the run and its
event in the same statement. A partial index serves the thread check.

Revision ID: 0016_start_run_hold
Revises: 0015_reserve_hold
Create Date: 2026-12-03 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_start_run_hold"
down_revision: str | None = "0015_reserve_hold"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Outcomes: those of reserve_run_hold, and 'thread_busy' (other_run: the thread's unfinished run;
# the hold is made, and the caller's rollback undoes it).
_FUNCTION = """
CREATE FUNCTION start_run_hold(
    p_run_id uuid, p_account uuid, p_amount bigint, p_state_key text, p_busy text[]
)
RETURNS TABLE (outcome text, available bigint, other_run uuid)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    SELECT h.outcome, h.available INTO outcome, available
    FROM reserve_run_hold(p_run_id, p_account, p_amount) h;
    IF outcome IN ('no_account', 'insufficient') OR p_state_key IS NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT g.run_id INTO other_run FROM graph_runs g
    WHERE g.billing_account_id = p_account AND g.state_key = p_state_key
      AND g.run_id <> p_run_id AND g.status = ANY (p_busy)
    LIMIT 1;
    IF FOUND THEN
        outcome := 'thread_busy';
    END IF;
    RETURN NEXT;
END
$$
"""
_SIGNATURE = "start_run_hold(uuid, uuid, bigint, text, text[])"


#: The thread check's lookup (it scanned the account's runs by creation time).
_INDEX = "ix_graph_runs_account_state_key"


def upgrade() -> None:
    op.execute(_FUNCTION)
    op.create_index(
        _INDEX,
        "graph_runs",
        ["billing_account_id", "state_key"],
        postgresql_where="state_key IS NOT NULL",
    )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="graph_runs")
    op.execute(f"DROP FUNCTION {_SIGNATURE}")
