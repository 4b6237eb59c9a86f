"""The real run activities, except that the first attempt of execute dies as a killed worker would:
after the run's charges were committed but before its end, or after its end (the completion that
never reached Temporal). Shared by the retry tests of the workflow and of tracing."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities.runs import RunActivities
from runledger.contracts.runs import ExecuteInput, ExecuteResult


class LoseWorkerAfterCharging(RunActivities):
    """Dies after every charge of the run was written, before the run's end: the retry runs the graph
    again and its settled calls are replayed from their records."""

    async def end_execution(self, run_id: str, output: dict[str, Any]) -> ExecuteResult:
        if activity.info().attempt == 1:
            raise RuntimeError("worker lost after its charges were written")
        return await super().end_execution(run_id, output)


class LoseWorkerAfterEnding(RunActivities):
    """Dies after the run ended (success, output, ``done``), before Temporal heard: the retry finds
    the run ended and answers with it, running nothing."""

    @activity.defn(name="execute_graph")
    async def execute(self, inp: ExecuteInput) -> ExecuteResult:
        result = await super().execute(inp)
        if activity.info().attempt == 1:
            raise RuntimeError("worker lost after the run ended")
        return result
