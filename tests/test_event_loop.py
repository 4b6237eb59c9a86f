"""runledger's long-running processes run on uvloop (``runledger.event_loop``)."""

from __future__ import annotations

import asyncio

from runledger import event_loop


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_the_processes_event_loop_is_uvloop_and_runs_the_coroutine_to_its_result() -> None:
    assert event_loop.run(_loop_module()).startswith("uvloop")
