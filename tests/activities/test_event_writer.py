"""The worker's batched event writer: many runs' text deltas in one statement, per-run order and
gap-free sequence numbers kept, one NOTIFY per batch that wakes every listening stream."""

from __future__ import annotations

import asyncio
import functools

import httpx
import pytest

from activities.events import EventWriter, TextStream
from db import events
from db.notify import RunEventListener
from db.session import Database
from tests.helpers import Tenant, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")


async def _finished_runs(api: httpx.AsyncClient, user: Tenant, n: int) -> list[str]:
    ids = [(await start_run(api, user)).json()["run_id"] for _ in range(n)]
    for run_id in ids:
        await wait_for_run(api, user, run_id)
    return ids


async def _seqs(database: Database, run_id: str) -> list[tuple[int, str, dict[str, object]]]:
    async with database.transaction() as session:
        rows = await events.read_after(session, run_id=run_id, after_seq=0)
    return [(r.seq, r.event, r.data) for r in rows]


async def test_one_statement_appends_many_runs_in_order_and_skips_unknown_runs(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    a, b = await _finished_runs(api, user, 2)
    before_a, before_b = len(await _seqs(database, a)), len(await _seqs(database, b))
    rows = [
        (a, "text_delta", {"text": "a1"}),
        (b, "text_delta", {"text": "b1"}),
        ("00000000-0000-4000-8000-000000000000", "text_delta", {"text": "nobody"}),
        (a, "text_delta", {"text": "a2"}),
        (b, "text_delta", {"text": "b2"}),
        (a, "text_delta", {"text": "a3"}),
    ]
    written = await database.single_statement(functools.partial(events.append_many, events=rows))
    assert written == 5
    for run_id, before, texts in ((a, before_a, ["a1", "a2", "a3"]), (b, before_b, ["b1", "b2"])):
        seen = await _seqs(database, run_id)
        assert [s for s, _, _ in seen] == list(range(1, len(seen) + 1))  # still gap-free
        assert [d["text"] for _, _, d in seen[before:]] == texts


async def test_writer_coalesces_a_call_and_sync_waits_for_it(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    (run_id,) = await _finished_runs(api, user, 1)
    before = len(await _seqs(database, run_id))
    writer = EventWriter(database, interval=0.05)
    for word in ("one ", "two ", "three"):
        writer.add(run_id, "node:0", "node", word)
    writer.add(run_id, "other:0", "other", "x")
    # A retried execution streams the call again under its attempt: never merged with the first.
    writer.add(run_id, "node:0", "node", "one again", 2)
    await writer.sync()
    added = (await _seqs(database, run_id))[before:]
    assert [(e, d["call_key"], d["text"], d["attempt"]) for _, e, d in added] == [
        ("text_delta", "node:0", "one two three", 1),
        ("text_delta", "other:0", "x", 1),
        ("text_delta", "node:0", "one again", 2),
    ]
    await writer.close()


async def test_a_batch_notification_wakes_every_run_in_it(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    ids = await _finished_runs(api, user, 3)
    listener = RunEventListener(database.url)
    listener.start()
    try:
        await asyncio.sleep(0.5)  # LISTEN is issued once the connection is up
        # The listener's own re-read timeout is far longer than the test may take: only the
        # notification can end these waits.
        waits = [asyncio.create_task(listener.wait(run_id, within=3600)) for run_id in ids]
        await asyncio.sleep(0.1)
        streams = [TextStream(database, run_id=run_id, call_key="n:0", node="n") for run_id in ids]
        for stream in streams:
            await stream("hello")
        await streams[0].flush()
        await asyncio.wait_for(asyncio.gather(*waits), timeout=60)
    finally:
        await listener.stop()
