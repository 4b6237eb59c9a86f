"""The bare-Temporal baseline: one workflow that calls one no-op activity (feasibility §3, W1).

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
