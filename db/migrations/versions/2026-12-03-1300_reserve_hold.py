"""reserve_run_hold(): a run's credit hold as one statement (BOUNDED_OVERSPEND)

A run's hold (an API start's, or a scheduled or webhook run's at authorization) was five statements
from the caller: read an existing hold, lock the account row, read it again, sum the account's open
holds, insert. The account's lock, which every start and every charge of the account needs, was
held across the last three round trips as well as the rest of the start's transaction. As one
function the hold costs one round trip; the lock is still held until the caller's transaction
commits (the run row and its event are written in it, so a refused hold leaves nothing). VOLATILE,
so under READ COMMITTED each statement in it takes a new snapshot: the open holds summed after the
lock include every hold committed while it waited.

Revision ID: 0015_reserve_hold
Revises: 0014_reserve_call
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015_reserve_hold"
down_revision: str | None = "0014_reserve_call"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Outcomes: 'exists' (the run already has a hold: returned without the account's lock; available
# is not computed, 0); 'no_account'; 'insufficient' (available: the balance less the other open
# holds); 'reserved' (available: what is left after this hold).
_FUNCTION = """
CREATE FUNCTION reserve_run_hold(p_run_id uuid, p_account uuid, p_amount bigint)
RETURNS TABLE (outcome text, available bigint, reservation_id uuid)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_balance bigint;
    v_held bigint;
BEGIN
    SELECT r.id INTO reservation_id FROM credit_reservations r WHERE r.run_id = p_run_id;
    IF FOUND THEN
        RETURN QUERY SELECT 'exists'::text, 0::bigint, reservation_id;
        RETURN;
    END IF;
    -- FOR NO KEY UPDATE: it serializes holds and balance changes on the account, but not the
    -- key-share locks that inserting rows which reference the account takes.
    SELECT a.balance_credits INTO v_balance FROM billing_accounts a WHERE a.id = p_account
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no_account'::text, NULL::bigint, NULL::uuid;
        RETURN;
    END IF;
    -- Made by another start of the same run while this one waited for the lock.
    SELECT r.id INTO reservation_id FROM credit_reservations r WHERE r.run_id = p_run_id;
    IF FOUND THEN
        RETURN QUERY SELECT 'exists'::text, 0::bigint, reservation_id;
        RETURN;
    END IF;
    SELECT coalesce(sum(greatest(r.reserved_credits - r.settled_credits, 0)), 0) INTO v_held
    FROM credit_reservations r
    WHERE r.billing_account_id = p_account AND r.status = 'open' AND r.run_id <> p_run_id;
    IF v_balance - v_held < p_amount THEN
        RETURN QUERY SELECT 'insufficient'::text, v_balance - v_held, NULL::uuid;
        RETURN;
    END IF;
    INSERT INTO credit_reservations (billing_account_id, run_id, reserved_credits)
    VALUES (p_account, p_run_id, p_amount) RETURNING id INTO reservation_id;
    RETURN QUERY SELECT 'reserved'::text, v_balance - v_held - p_amount, reservation_id;
END
$$
"""
_SIGNATURE = "reserve_run_hold(uuid, uuid, bigint)"


def upgrade() -> None:
    op.execute(_FUNCTION)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {_SIGNATURE}")
