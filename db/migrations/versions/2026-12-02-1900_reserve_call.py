"""reserve_model_call(): a model call's reservation as one statement (BOUNDED_OVERSPEND)

Before every model call the meter locks the run's hold and the account row, reads the state the
reservation decides on, grows the run's hold and records the call ``pending``. Done as statements
from the worker, the account's lock was held across four round trips, each one as long as the
worker's event loop took to come back to it: under load the hot account's lock, which every charge
and reservation of the account needs, was held for the worker's scheduling latency, not for the
database's work. As one function called in its own transaction, the lock is held for the server's
work only. It is VOLATILE, so under READ COMMITTED each statement in it takes a new snapshot: the
state read after the locks sees every charge and hold committed while it waited for them.

Revision ID: 0014_reserve_call
Revises: 0013_schedule_notify
Create Date: 2026-12-02 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014_reserve_call"
down_revision: str | None = "0013_schedule_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Outcomes, checked in this order: 'no_account'; 'not_running' (run_status: the run's status, NULL
# when there is no such run); 'grant_exhausted' (grant_left < the grant's calls in flight + this
# call); 'insufficient' (spendable < needed); 'released' (the run's hold was released: it ended);
# 'reserved' (call_id set). A call whose row of this attempt is no longer pending raises.
_FUNCTION = """
CREATE FUNCTION reserve_model_call(
    p_run_id uuid, p_account uuid, p_attempt integer, p_call_key text, p_model text,
    p_request_hash text, p_usage_unit_id text, p_max_credits bigint, p_grant_id uuid
) RETURNS TABLE (
    outcome text, call_id uuid, run_status text, spendable bigint, needed bigint, grant_left bigint
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_hold text;
    v_balance bigint;
    v_in_flight bigint;
    v_grant_max bigint;
    v_grant_in_flight bigint;
BEGIN
    -- The run's hold first, then the account: a charge of the same run locks them in that order.
    SELECT r.status INTO v_hold FROM credit_reservations r WHERE r.run_id = p_run_id FOR UPDATE;
    -- FOR NO KEY UPDATE: it serializes holds and balance changes on the account, but not the
    -- key-share locks that inserting rows which reference the account takes.
    SELECT a.balance_credits INTO v_balance FROM billing_accounts a WHERE a.id = p_account
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no_account'::text, NULL::uuid, NULL::text, NULL::bigint, NULL::bigint,
            NULL::bigint;
        RETURN;
    END IF;
    SELECT g.status INTO run_status FROM graph_runs g WHERE g.run_id = p_run_id;
    IF run_status IS DISTINCT FROM 'running' THEN
        RETURN QUERY SELECT 'not_running'::text, NULL::uuid, run_status, NULL::bigint, NULL::bigint,
            NULL::bigint;
        RETURN;
    END IF;
    -- What the other runs of the account hold: their open holds' unsettled parts.
    SELECT v_balance - coalesce(sum(greatest(r.reserved_credits - r.settled_credits, 0)), 0)
    INTO spendable FROM credit_reservations r
    WHERE r.billing_account_id = p_account AND r.status = 'open' AND r.run_id <> p_run_id;
    -- This attempt's other calls now at the provider (not this call: a repeated call is idempotent).
    SELECT coalesce(sum(m.reserved_credits), 0) INTO v_in_flight FROM model_calls m
    WHERE m.run_id = p_run_id AND m.attempt = p_attempt AND m.status = 'pending'
      AND m.call_key <> p_call_key;
    needed := p_max_credits + v_in_flight;
    IF p_grant_id IS NOT NULL THEN
        -- The grant's spend cap, under the account's lock: every charge under the grant updates the
        -- account too, so its spent credits and its calls in flight are one state here.
        SELECT e.max_credits, e.max_credits - e.spent_credits INTO v_grant_max, grant_left
        FROM execution_grants e WHERE e.id = p_grant_id;
        IF v_grant_max IS NOT NULL THEN
            SELECT coalesce(sum(m.reserved_credits), 0) INTO v_grant_in_flight
            FROM model_calls m JOIN graph_runs g ON g.run_id = m.run_id
            WHERE g.grant_id = p_grant_id AND g.status = 'running' AND m.status = 'pending'
              AND NOT (m.run_id = p_run_id AND m.call_key = p_call_key AND m.attempt = p_attempt);
            IF grant_left <= 0 OR grant_left < v_grant_in_flight + p_max_credits THEN
                RETURN QUERY SELECT 'grant_exhausted'::text, NULL::uuid, run_status, spendable, needed,
                    grant_left;
                RETURN;
            END IF;
        END IF;
    END IF;
    IF spendable < needed THEN
        RETURN QUERY SELECT 'insufficient'::text, NULL::uuid, run_status, spendable, needed, NULL::bigint;
        RETURN;
    END IF;
    IF v_hold IS NOT NULL AND v_hold <> 'open' THEN
        RETURN QUERY SELECT 'released'::text, NULL::uuid, run_status, spendable, needed, NULL::bigint;
        RETURN;
    END IF;
    IF v_hold IS NULL THEN
        INSERT INTO credit_reservations (billing_account_id, run_id, reserved_credits)
        VALUES (p_account, p_run_id, needed);
    ELSE
        UPDATE credit_reservations r SET reserved_credits = greatest(r.reserved_credits, r.settled_credits + needed)
        WHERE r.run_id = p_run_id AND r.status = 'open';
    END IF;
    INSERT INTO model_calls AS m (
        run_id, call_key, attempt, model, request_hash, usage_unit_id, reserved_credits
    )
    VALUES (p_run_id, p_call_key, p_attempt, p_model, p_request_hash, p_usage_unit_id, p_max_credits)
    ON CONFLICT (run_id, call_key, attempt) DO UPDATE
    SET request_hash = EXCLUDED.request_hash, reserved_credits = EXCLUDED.reserved_credits
    WHERE m.status = 'pending'
    RETURNING m.id INTO call_id;
    IF call_id IS NULL THEN
        -- A closed row: nothing of this reservation may stand.
        RAISE EXCEPTION 'model call %/%/% is already closed', p_run_id, p_call_key, p_attempt;
    END IF;
    outcome := 'reserved';
    RETURN NEXT;
END
$$
"""

_SIGNATURE = "reserve_model_call(uuid, uuid, integer, text, text, text, text, bigint, uuid)"


def upgrade() -> None:
    op.execute(_FUNCTION)


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {_SIGNATURE}")
