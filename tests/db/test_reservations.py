"""A run's credit hold (``db.reservations.reserve``, the ``reserve_run_hold`` function) on a real
Postgres: its outcomes, and concurrent holds on one account that never hold more than its balance."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from db import reservations
from db.errors import NotFoundError
from db.session import Database
from tests.db.builders import insert_run
from tests.db.queries import scalar
from tests.helpers import create_user


async def _hold(database: Database, account: str, run_id: str, amount: int) -> reservations.Hold:
    async with database.transaction() as session:
        return await reservations.reserve(session, billing_account_id=account, run_id=run_id, amount=amount)


async def test_a_hold_is_made_once_per_run_and_refused_beyond_the_available_balance(
    api: httpx.AsyncClient, database: Database
) -> None:
    user = await create_user(api, credits=1_000)
    first = await insert_run(database, user.billing_account_id, user.user_id)
    second = await insert_run(database, user.billing_account_id, user.user_id)

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
    run_ids = [await insert_run(database, user.billing_account_id, user.user_id) for _ in range(12)]
    holds = await asyncio.gather(*(_hold(database, user.billing_account_id, r, 300) for r in run_ids))
    assert sum(h.ok for h in holds) == 3
    held = await scalar(
        database,
        "SELECT coalesce(sum(reserved_credits), 0) FROM credit_reservations WHERE billing_account_id = :a",
        a=user.billing_account_id,
    )
    assert held == 900
