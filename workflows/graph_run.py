"""``GraphRunWorkflow``: authorize → execute → finalize, for every kind of run.

Workflow id ``graph-run:{run_id}``; the starter sets the search attributes. Authorize and finalize
are short database steps run as local activities (no extra task-queue round trip); the graph runs as a
regular activity with its own retry policy.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

from contracts.errors import ErrorCode
from contracts.grants import is_grant_error
from contracts.runs import (
    GRAPH_RUN_WORKFLOW,
    AuthorizeInput,
    ExecuteInput,
    ExecuteResult,
    FinalizeInput,
    GraphRunInput,
    GraphRunResult,
    RunStatus,
)
from workflows import policies

with workflow.unsafe.imports_passed_through():
    from activities.runs import RunActivities


@workflow.defn(name=GRAPH_RUN_WORKFLOW)
class GraphRunWorkflow:
    @workflow.run
    async def run(self, inp: GraphRunInput) -> GraphRunResult:
        try:
            auth = await workflow.execute_local_activity_method(
                RunActivities.authorize,
                AuthorizeInput(run_id=inp.run_id),
                start_to_close_timeout=policies.DB_START_TO_CLOSE,
                schedule_to_close_timeout=policies.DB_SCHEDULE_TO_CLOSE,
                retry_policy=policies.DB_RETRY,
            )
            if not auth.allowed:
                return await self._finish(
                    inp, _refusal_status(auth.error_code), code=auth.error_code, message=auth.error_message
                )
            result: ExecuteResult = await workflow.execute_activity_method(
                RunActivities.execute,
                ExecuteInput(run_id=inp.run_id),
                start_to_close_timeout=policies.GRAPH_START_TO_CLOSE,
                schedule_to_close_timeout=policies.GRAPH_SCHEDULE_TO_CLOSE,
                heartbeat_timeout=policies.GRAPH_HEARTBEAT,
                retry_policy=policies.GRAPH_RETRY,
            )
        except ActivityError as err:
            code, message = _failure(err)
            return await self._finish(inp, _refusal_status(code), code=code, message=message)
        except asyncio.CancelledError:
            # Cancellation was delivered; recording it is a new, uncancelled step.
            await self._finish(inp, RunStatus.CANCELLED, code=ErrorCode.RUN_CANCELLED, message="cancelled")
            raise
        return await self._finish(
            inp, RunStatus.SUCCESS, model_calls=result.model_calls, charged_credits=result.charged_credits
        )

    async def _finish(
        self,
        inp: GraphRunInput,
        status: RunStatus,
        *,
        code: str | None = None,
        message: str | None = None,
        model_calls: int = 0,
        charged_credits: int = 0,
    ) -> GraphRunResult:
        final = await workflow.execute_local_activity_method(
            RunActivities.finalize,
            FinalizeInput(run_id=inp.run_id, status=status, error_code=code, error_message=message),
            start_to_close_timeout=policies.DB_START_TO_CLOSE,
            schedule_to_close_timeout=policies.DB_SCHEDULE_TO_CLOSE,
            retry_policy=policies.DB_RETRY,
        )
        return GraphRunResult(
            run_id=inp.run_id,
            status=final.status,
            error_code=code,
            model_calls=model_calls,
            charged_credits=charged_credits,
        )


def _refusal_status(code: str | None) -> RunStatus:
    """A run its grant does not allow is ``skipped`` (with the grant's code); other failures are errors."""
    return RunStatus.SKIPPED if is_grant_error(code) else RunStatus.ERROR


def _failure(err: ActivityError) -> tuple[str, str]:
    cause = err.cause
    while isinstance(cause, FailureError) and not isinstance(cause, ApplicationError):
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return cause.type or ErrorCode.GRAPH_FAILED, cause.message
    return ErrorCode.GRAPH_FAILED, str(err.cause or err)
