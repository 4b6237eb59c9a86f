"""Transient errors are retried: database and network errors inside the execute activity are
retried by Temporal (the retry continues after the last checkpoint; settled calls replay); only
graph errors and typed refusals are non-retryable. A failed tool-event write never escapes
``tools.call``. The database errors are real Postgres errors (``tests.faults``)."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy.exc
from temporalio.exceptions import ApplicationError

from activities.failures import TRANSIENT_ERROR, execution_failure
from activities.metering import CreditsExhaustedError
from db.session import Database
from runledger import tools
from runledger.contracts.tools import CURRENT_TIME
from tests.db.queries import rows
from tests.faults import failing_inserts
from tests.helpers import Tenant, start_run, wait_for_run


def _statement_error(kind: type[sqlalchemy.exc.DBAPIError], orig: Exception) -> sqlalchemy.exc.DBAPIError:
    return kind("INSERT INTO model_calls ...", {}, orig)


@pytest.mark.parametrize(
    ("exc", "retryable", "code"),
    [
        (
            _statement_error(sqlalchemy.exc.OperationalError, psycopg.OperationalError("server closed")),
            True,
            TRANSIENT_ERROR,
        ),
        (
            _statement_error(sqlalchemy.exc.InterfaceError, psycopg.InterfaceError("closed")),
            True,
            TRANSIENT_ERROR,
        ),
        (ConnectionResetError("reset by peer"), True, TRANSIENT_ERROR),
        (TimeoutError("read timed out"), True, TRANSIENT_ERROR),
        (
            _statement_error(sqlalchemy.exc.IntegrityError, psycopg.IntegrityError("dup")),
            False,
            "graph_failed",
        ),
        (ValueError("a bug in a node"), False, "graph_failed"),
        (CreditsExhaustedError(10, 5), False, "credits_exhausted"),
    ],
)
def test_execution_failures_are_retryable_only_when_a_retry_can_help(
    exc: Exception, retryable: bool, code: str
) -> None:
    failure = execution_failure(exc)
    assert isinstance(failure, ApplicationError)
    assert failure.type == code
    assert failure.non_retryable is not retryable


def test_a_database_error_wrapped_by_graph_code_is_still_transient() -> None:
    wrapped = RuntimeError("node failed")
    wrapped.__cause__ = _statement_error(sqlalchemy.exc.OperationalError, psycopg.OperationalError("gone"))
    assert execution_failure(wrapped).non_retryable is False


@pytest.mark.usefixtures("worker")
async def test_a_database_error_in_the_meter_is_retried_by_temporal(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    # The first model call's pending record is refused by Postgres twice: the reservation is one
    # idempotent statement, retried once in place (Database.single_statement), then by Temporal.
    async with failing_inserts(database, "model_calls", user.billing_account_id, times=2) as fault:
        run = await wait_for_run(api, user, (await start_run(api, user)).json()["run_id"], within=60)
        assert await fault.fired() == 2
    assert run["status"] == "success", run
    calls = await rows(database, "SELECT attempt, status FROM model_calls WHERE run_id = :r", r=run["run_id"])
    assert [(c["attempt"], c["status"]) for c in calls] == [(2, "settled")]


@pytest.mark.usefixtures("worker")
async def test_a_failed_tool_event_write_never_escapes_tools_call(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    where = "NEW.event IN ('tool_call_start', 'tool_call_result')"
    async with failing_inserts(database, "run_events", user.billing_account_id, where=where) as fault:
        started = await start_run(
            api, user, graph_id="langgraph:dated_note", payload={"input": {"topic": "tea"}}
        )
        run = await wait_for_run(api, user, started.json()["run_id"], within=60)
        assert await fault.fired() >= 2
    assert run["status"] == "success", run
    assert run["output"]["written_at"]
    calls = await rows(database, "SELECT attempt FROM model_calls WHERE run_id = :r", r=run["run_id"])
    assert [c["attempt"] for c in calls] == [1]  # no retry: the tool call went on without its events


async def test_a_sink_that_raises_does_not_fail_the_tool_call() -> None:
    async def broken(event: str, data: dict[str, Any]) -> None:
        raise ConnectionError("the event store is down")

    runner = tools.ToolRunner(policy=tools.AllowList(frozenset({CURRENT_TIME.tool_id})), emit=broken)
    result = await runner.call(CURRENT_TIME.tool_id, {}, call_id="c-1")
    assert result.ok, result
    refused = await runner.call("nope", {}, call_id="c-2")
    assert not refused.ok
