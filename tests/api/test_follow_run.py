"""A run's event feed (``api.event_stream.follow_run``, behind the SSE endpoint, the dashboard's
timeline and both chat protocols) ends after the run's terminal event, even when the run ends
between the reader's look for new events and its look at the run's status."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest

from api.deps import AppState
from api.event_stream import follow_run
from db import runs
from db.session import Database
from runledger.contracts.runs import RunStatus
from tests.db.test_lifecycle import _finish, _running, _start
from tests.helpers import create_user


async def test_a_run_that_ends_between_the_two_reads_is_followed_to_its_done_event(
    api: httpx.AsyncClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await create_user(api, credits=1_000)
    run_id, _ = await _start(database, user.billing_account_id, user.user_id, 300, None)
    assert await _running(database, run_id)  # events 1 (pending) and 2 (running) are stored
    real_get_run = runs.get_run
    ended: list[bool] = []

    async def get_run_once_it_has_ended(session: Any, *, run_id: str) -> Any:
        if not ended:  # the run's end commits just after the reader found no event past 2
            ended.append(await _finish(database, run_id, RunStatus.SUCCESS, output={"poem": "a"}) is not None)
        return await real_get_run(session, run_id=run_id)

    monkeypatch.setattr(runs, "get_run", get_run_once_it_has_ended)
    state = cast(AppState, SimpleNamespace(database=database))  # the feed reads only the database here
    followed = [(e.seq, e.event) async for e in follow_run(state, run_id, after=2)]
    assert ended == [True]
    assert followed == [(3, "status"), (4, "done")]
