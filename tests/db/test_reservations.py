"""A run's credit hold (``db.reservations.reserve``, the ``reserve_run_hold`` function) on a real
Postgres: its outcomes, and concurrent holds on one account that never hold more than its balance;
an API start's record (``db.runs.record_start``: hold, thread check, run row and its first event in
one statement)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from db import reservations, runs
from db.errors import NotFoundError
from db.models import GraphRun
from db.session import Database
from runledger.contracts import ids
from runledger.contracts.events import status_event
from runledger.contracts.runs import RunStatus
from tests.db.queries import rows, scalar
from tests.db.test_ledger import _run_row
from tests.helpers import create_user


async def _hold(database: Database, account: str, run_id: str, amount: int) -> reservations.Hold:
    async with database.transaction() as session:
        return await reservations.reserve(session, billing_account_id=account, run_id=run_id, amount=amount)


async def test_a_hold_is_made_once_per_run_and_refused_beyond_the_available_balance(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=1_000)
    first = await _run_row(database, user.billing_account_id, user.user_id)
    second = await _run_row(database, user.billing_account_id, user.user_id)

    made = await _hold(database, user.billing_account_id, first, 600)
    assert (made.ok, made.available) == (True, 400)
    assert made.reservation_id is not None
    again = await _hold(database, user.billing_account_id, first, 600)
    assert (again.ok, again.available, again.reservation_id) == (True, 0, made.reservation_id)

    refused = await _hold(database, user.billing_account_id, second, 401)
    assert (refused.ok, refused.available, refused.reservation_id) == (False, 400, None)
    assert await scalar(database, "SELECT count(*) FROM credit_reservations WHERE run_id = :r", r=second) == 0
    exact = await _hold(database, user.billing_account_id, second, 400)
    assert (exact.ok, exact.available) == (True, 0)

    with pytest.raises(NotFoundError):
        await _hold(database, str(uuid.uuid4()), str(uuid.uuid4()), 1)


async def test_concurrent_holds_on_one_account_never_hold_more_than_its_balance(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=1_000)
    run_ids = [await _run_row(database, user.billing_account_id, user.user_id) for _ in range(12)]
    holds = await asyncio.gather(*(_hold(database, user.billing_account_id, r, 300) for r in run_ids))
    assert sum(h.ok for h in holds) == 3
    held = await scalar(
        database,
        "SELECT coalesce(sum(reserved_credits), 0) FROM credit_reservations WHERE billing_account_id = :a",
        a=user.billing_account_id,
    )
    assert held == 900


class _Refused(Exception):
    pass


async def _start(
    database: Database, account: str, user_id: str, amount: int, state_key: str | None
) -> tuple[str, runs.StartRecord]:
    run_id = str(uuid.uuid4())
    run = GraphRun(
        run_id=run_id,
        workflow_id=ids.graph_run_workflow_id(run_id),
        graph_id="langgraph:poet",
        billing_account_id=account,
        run_kind="user_immediate",
        trigger_source="api",
        requested_by=user_id,
        state_key=state_key,
        input={"topic": "x"},
        status="pending",
        trace_id=ids.langfuse_trace_id(run_id),
    )
    try:
        async with database.transaction() as session:
            record = await runs.record_start(
                session,
                run=run,
                amount=amount,
                busy_statuses=frozenset({"pending", "running", "paused"}),
                event=status_event(RunStatus.PENDING),
            )
            if not record.recorded:
                raise _Refused  # as the API's 402/409: the transaction rolls back
    except _Refused:
        pass
    if record.recorded:
        assert run.created_at is not None
    return run_id, record


async def test_a_start_records_its_hold_run_and_first_event_or_nothing_of_the_run(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=1_000)
    account, uid = user.billing_account_id, user.user_id

    first, made = await _start(database, account, uid, 600, "thread-a")
    assert (made.outcome, made.available, made.recorded) == ("reserved", 400, True)
    stored = await rows(
        database, "SELECT status, event_seq, input FROM graph_runs WHERE run_id = :r", r=first
    )
    assert stored == [{"status": "pending", "event_seq": 1, "input": {"topic": "x"}}]
    assert await rows(database, "SELECT seq, event, data FROM run_events WHERE run_id = :r", r=first) == [
        {"seq": 1, "event": "status", "data": status_event(RunStatus.PENDING)[1]}
    ]
    assert (
        await scalar(database, "SELECT reserved_credits FROM credit_reservations WHERE run_id = :r", r=first)
        == 600
    )

    poor, refused = await _start(database, account, uid, 401, None)
    assert (refused.outcome, refused.available, refused.recorded) == ("insufficient", 400, False)
    assert await scalar(database, "SELECT count(*) FROM graph_runs WHERE run_id = :r", r=poor) == 0

    busy, on_thread = await _start(database, account, uid, 100, "thread-a")
    assert (on_thread.outcome, on_thread.other_run, on_thread.recorded) == ("thread_busy", first, False)
    assert await scalar(database, "SELECT count(*) FROM graph_runs WHERE run_id = :r", r=busy) == 0
    assert await scalar(database, "SELECT count(*) FROM run_events WHERE run_id = :r", r=busy) == 0

    # The refused starts' holds were rolled back: 1,000 - 600 - 100.
    _, free = await _start(database, account, uid, 100, "thread-b")
    assert (free.outcome, free.available) == ("reserved", 300)

    _, missing = await _start(database, str(uuid.uuid4()), uid, 1, None)
    assert missing.outcome == "no_account"
