"""The bare-Temporal baselines: one workflow that calls one no-op activity (feasibility §3, W1), and
one whose one activity sleeps as long as a model call (``bench.latency_bench``).

Kept in its own module with no code at import, because the workflow sandbox re-imports it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

BARE_WORKFLOW = "BenchBareWorkflow"


@activity.defn(name="bench_noop")
async def noop(value: int) -> int:
    return value + 1


@workflow.defn(name=BARE_WORKFLOW)
class BareWorkflow:
    @workflow.run
    async def run(self, value: int) -> int:
        return await workflow.execute_activity(noop, value, start_to_close_timeout=timedelta(seconds=30))


SLEEP_WORKFLOW = "BenchSleepWorkflow"


@activity.defn(name="bench_sleep")
async def sleep(seconds: float) -> float:
    """The bare baseline at model latency: an activity that waits as long as a model call."""
    import asyncio

    await asyncio.sleep(seconds)
    return seconds


@workflow.defn(name=SLEEP_WORKFLOW)
class SleepWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> float:
        return await workflow.execute_activity(sleep, seconds, start_to_close_timeout=timedelta(seconds=300))
