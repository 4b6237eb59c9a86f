"""A run's life in one statement per step, on a real Postgres (``db.lifecycle``): an API start's
record (hold, thread check, run row and its first event), the move to ``running`` of a run that
needs no other check, and a run's end (status, totals, hold released, its terminal events once)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from db import ledger, lifecycle, reservations, runs
from db.session import Database
from runledger.contracts.events import status_event, terminal_events
from runledger.contracts.runs import ON_THREAD_STATUSES, TERMINAL_STATUSES, RunStatus
from tests.db.builders import graph_run, insert_run
from tests.db.queries import rows, scalar
from tests.db.test_ledger import _charge
from tests.helpers import create_user

POET = frozenset({"langgraph:poet"})


class _Refused(Exception):
    pass


async def _start(
    database: Database, account: str, user_id: str, amount: int, state_key: str | None
) -> tuple[str, lifecycle.StartRecord]:
    run = graph_run(account, user_id, state_key=state_key, status="pending")
    try:
        async with database.transaction() as session:
            record = await lifecycle.record_start(
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
    return run.run_id, record


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


async def _running(database: Database, run_id: str, graphs: frozenset[str] = POET) -> bool:
    return await database.single_statement(
        lambda conn: lifecycle.start_running(
            conn,
            run_id=run_id,
            graphs=graphs,
            busy_statuses=ON_THREAD_STATUSES,
            event=status_event(RunStatus.RUNNING),
        )
    )


async def _events(database: Database, run_id: str) -> list[dict[str, object]]:
    return await rows(
        database, "SELECT seq, event, data FROM run_events WHERE run_id = :r ORDER BY seq", r=run_id
    )


async def test_an_api_run_holding_its_credits_moves_to_running_with_its_event_once(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=1_000)
    run_id, _ = await _start(database, user.billing_account_id, user.user_id, 100, None)

    assert await _running(database, run_id)
    stored = await rows(
        database,
        "SELECT status, event_seq, started_at IS NOT NULL AS started FROM graph_runs WHERE run_id = :r",
        r=run_id,
    )
    assert stored == [{"status": "running", "event_seq": 2, "started": True}]
    assert [(e["seq"], e["event"], e["data"]) for e in await _events(database, run_id)] == [
        (1, "status", {"status": "pending"}),
        (2, "status", {"status": "running"}),
    ]
    # A retried authorize finds it running: nothing moves, nothing is appended.
    assert not await _running(database, run_id)
    assert len(await _events(database, run_id)) == 2


async def test_runs_that_need_the_full_authorization_are_left_as_they_are(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=1_000)
    account, uid = user.billing_account_id, user.user_id
    # No hold yet (a scheduled or webhook run gets its hold when it is authorized).
    unheld = await insert_run(database, account, uid, status="pending", run_kind="system_scheduled")
    # A graph this worker does not serve.
    other_graph, _ = await _start(database, account, uid, 100, None)
    # Its thread is busy: another run of its state_key is running (it was held with the row, but
    # the thread check is the authorize transaction's to report).
    first, _ = await _start(database, account, uid, 100, "thread-a")
    assert await _running(database, first)
    second = await insert_run(database, account, uid, status="pending", state_key="thread-a")
    async with database.transaction() as session:
        assert (await reservations.reserve(session, billing_account_id=account, run_id=second, amount=100)).ok

    assert not await _running(database, unheld)
    assert not await _running(database, other_graph, graphs=frozenset({"langgraph:other"}))
    assert not await _running(database, second)
    for run_id in (unheld, other_graph, second):
        assert (
            await scalar(database, "SELECT status FROM graph_runs WHERE run_id = :r", r=run_id) == "pending"
        )
    assert await _events(database, unheld) == []
    assert len(await _events(database, other_graph)) == 1
    assert await _events(database, second) == []


async def _finish(
    database: Database,
    run_id: str,
    status: str,
    *,
    code: str | None = None,
    message: str | None = None,
    output: dict[str, Any] | None = None,
    unless_cancel_requested: bool = False,
) -> lifecycle.FinishedRun | None:
    return await database.single_statement(
        lambda conn: lifecycle.finish(
            conn,
            run_id=run_id,
            status=status,
            error_code=code,
            error_message=message,
            count_charges=True,
            events=terminal_events(
                status, error_code=code, error_message=message, output=None, cost_credits=0
            ),
            output=output,
            unless_cancel_requested=unless_cancel_requested,
        )
    )


async def _hold_status(database: Database, run_id: str) -> str:
    return str(await scalar(database, "SELECT status FROM credit_reservations WHERE run_id = :r", r=run_id))


async def test_a_successful_run_ends_once_with_its_output_and_cost_in_its_done_event(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=1_000)
    run_id, _ = await _start(database, user.billing_account_id, user.user_id, 300, None)
    assert await _running(database, run_id)
    async with database.transaction() as session:
        await ledger.record_charge(session, charge=_charge(user.billing_account_id, run_id, "call-1"))
    ended = await _finish(database, run_id, RunStatus.SUCCESS, output={"poem": "a"})
    assert ended == lifecycle.FinishedRun(
        run_id=run_id,
        graph_id="langgraph:poet",
        billing_account_id=user.billing_account_id,
        status="success",
        error_code=None,
        error_message=None,
        model_calls=1,
        cost_credits=120,
        notify_url=None,
    )
    assert [(e["seq"], e["event"], e["data"]) for e in await _events(database, run_id)][2:] == [
        (3, "status", {"status": "success"}),
        (4, "done", {"status": "success", "output": {"poem": "a"}, "cost_credits": 120}),
    ]
    assert await scalar(database, "SELECT event_seq FROM graph_runs WHERE run_id = :r", r=run_id) == 4
    assert await scalar(database, "SELECT output FROM graph_runs WHERE run_id = :r", r=run_id) == {
        "poem": "a"
    }
    assert await _hold_status(database, run_id) == "released"
    # Finalized again (a retried step, the sweeper): nothing moves, no second done, output kept.
    assert (
        await _finish(database, run_id, RunStatus.ERROR, code="graph_failed", message="late", output={})
        is None
    )
    assert len(await _events(database, run_id)) == 4
    assert await scalar(database, "SELECT output FROM graph_runs WHERE run_id = :r", r=run_id) == {
        "poem": "a"
    }
    assert await scalar(database, "SELECT status FROM graph_runs WHERE run_id = :r", r=run_id) == "success"


async def test_a_failed_run_ends_with_its_charges_counted_its_hold_released_and_its_error_scrubbed(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=1_000)
    run_id, _ = await _start(database, user.billing_account_id, user.user_id, 300, None)
    assert await _running(database, run_id)
    async with database.transaction() as session:
        for unit in ("call-1", "call-2"):
            await ledger.record_charge(session, charge=_charge(user.billing_account_id, run_id, unit))

    secret = "sk-live" + "x" * 20
    ended = await _finish(database, run_id, RunStatus.ERROR, code="graph_failed", message=f"boom {secret}")
    assert ended is not None
    assert (ended.status, ended.error_code, ended.model_calls, ended.cost_credits) == (
        "error",
        "graph_failed",
        2,
        240,
    )
    assert ended.error_message is not None
    assert secret not in ended.error_message
    final = (await _events(database, run_id))[-1]
    assert final["event"] == "error"
    assert final["data"] == {
        "status": "error",
        "code": "graph_failed",
        "message": ended.error_message,
        "cost_credits": 240,
    }
    stored = await rows(
        database,
        "SELECT error_message, model_calls, cost_credits, completed_at IS NOT NULL AS done FROM graph_runs WHERE run_id = :r",
        r=run_id,
    )
    assert stored == [
        {"error_message": ended.error_message, "model_calls": 2, "cost_credits": 240, "done": True}
    ]
    assert await _hold_status(database, run_id) == "released"


async def test_a_run_that_already_ended_still_has_its_hold_released(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=1_000)
    run_id, _ = await _start(database, user.billing_account_id, user.user_id, 300, None)
    async with database.autocommit() as session:
        assert await runs.transition(session, run_id=run_id, to=RunStatus.CANCELLED)
    assert await _hold_status(database, run_id) == "open"

    assert await _finish(database, run_id, RunStatus.SUCCESS) is None
    assert await _hold_status(database, run_id) == "released"
    assert len(await _events(database, run_id)) == 1


async def test_an_execution_records_the_version_it_runs_only_for_a_running_run_of_a_served_graph(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=1_000)
    run_id, _ = await _start(database, user.billing_account_id, user.user_id, 100, "thread-x")
    version = str(
        await scalar(database, "SELECT version FROM graph_catalog WHERE graph_id = 'langgraph:poet'")
    )

    async def begin(versions: dict[str, str]) -> lifecycle.ExecutionRun | None:
        return await database.single_statement(
            lambda conn: lifecycle.begin_execution(conn, run_id=run_id, versions=versions)
        )

    assert await begin({"langgraph:poet": version}) is None  # still pending
    assert await _running(database, run_id)
    assert await begin({"langgraph:other": "v1"}) is None  # not a graph this worker serves
    assert await scalar(database, "SELECT graph_version FROM graph_runs WHERE run_id = :r", r=run_id) is None

    run = await begin({"langgraph:poet": version, "langgraph:other": "v1"})
    assert run == lifecycle.ExecutionRun(
        run_id=run_id,
        graph_id="langgraph:poet",
        billing_account_id=user.billing_account_id,
        grant_id=None,
        state_key="thread-x",
        connections=None,
        input={"topic": "x"},
        replay_of=None,
        replay_from_checkpoint=None,
    )
    assert (
        await scalar(database, "SELECT graph_version FROM graph_runs WHERE run_id = :r", r=run_id) == version
    )


async def test_a_run_asked_to_cancel_is_not_ended_by_its_execution_but_by_its_workflow(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=1_000)
    run_id, _ = await _start(database, user.billing_account_id, user.user_id, 300, None)
    assert await _running(database, run_id)

    def request(conn: Any) -> Any:
        return lifecycle.request_cancel(conn, run_id=run_id, terminal_statuses=TERMINAL_STATUSES)

    assert await database.single_statement(request)
    async with database.transaction() as session:
        await ledger.record_charge(session, charge=_charge(user.billing_account_id, run_id, "call-1"))
    # The execution's own end (its graph finished after the cancel was asked for) moves nothing.
    guarded = await _finish(
        database, run_id, RunStatus.SUCCESS, output={"poem": "late"}, unless_cancel_requested=True
    )
    assert guarded is None
    assert await scalar(database, "SELECT status FROM graph_runs WHERE run_id = :r", r=run_id) == "running"
    assert await database.single_statement(
        lambda conn: lifecycle.record_output(conn, run_id=run_id, output={"poem": "late"})
    ) == (1, 120)
    # The workflow, which received the cancel, ends it.
    ended = await _finish(database, run_id, RunStatus.CANCELLED, code="run_cancelled", message="cancelled")
    assert ended is not None
    assert ended.status == "cancelled"
    assert [(e["event"], dict(e["data"])["status"]) for e in await _events(database, run_id)] == [  # type: ignore[call-overload]
        ("status", "pending"),
        ("status", "running"),
        ("status", "cancelled"),
        ("error", "cancelled"),
    ]
    assert await _hold_status(database, run_id) == "released"
    # An ended run is not marked: a cancel asked for now is answered "already finished".
    assert not await database.single_statement(request)
