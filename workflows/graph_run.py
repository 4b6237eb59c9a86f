"""``GraphRunWorkflow``: authorize → execute → finalize, for every kind of run.

Workflow id ``graph-run:{run_id}``; the starter sets the search attributes. The graph runs as a
regular activity with its own retry policy; its first statement authorizes the run (the preflight)
and, when the graph finished, its last one ends it (output, totals, hold and ``done``), so a
successful run is one activity. Every other end (refused, failed, cancelled, timed out), the pauses
and the resumes are short database steps run as local activities (no extra task-queue round trip).
Histories of earlier releases (``GraphRunInput.authorize_in_execute`` unset) replay their
``authorize_run`` local activity first. When the next model call is not covered
by credits, the run pauses durably: Temporal holds the wait until a ``credits_added`` signal (sent by
the top-up endpoint) or the configured timeout, then the graph resumes — its settled calls are
replayed from their records, never paid for twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

from runledger.contracts.errors import ErrorCode
from runledger.contracts.grants import is_grant_error
from runledger.contracts.runs import (
    CREDITS_ADDED_SIGNAL,
    GRAPH_RUN_WORKFLOW,
    RESUME_SIGNAL,
    AuthorizeInput,
    ExecuteInput,
    ExecuteResult,
    FinalizeInput,
    GraphRunInput,
    GraphRunResult,
    InputPauseInput,
    PauseInput,
    ResumeInput,
    RunStatus,
)
from workflows import policies

with workflow.unsafe.imports_passed_through():
    from activities.runs import RunActivities

#: Charge attempts of the n-th resumption start at n x this (see ExecuteInput.attempt_base).
ATTEMPTS_PER_EXECUTION = 1000


@workflow.defn(name=GRAPH_RUN_WORKFLOW)
class GraphRunWorkflow:
    def __init__(self) -> None:
        self._credit_signals = 0
        #: Values sent by ``POST /runs/{id}/resume``; only those after a pause resume it.
        self._resumes: list[Any] = []

    @workflow.signal(name=CREDITS_ADDED_SIGNAL)
    def credits_added(self) -> None:
        self._credit_signals += 1

    @workflow.signal(name=RESUME_SIGNAL)
    def resume(self, payload: dict[str, Any]) -> None:
        self._resumes.append(payload.get("value"))

    @workflow.run
    async def run(self, inp: GraphRunInput) -> GraphRunResult:
        try:
            if not inp.authorize_in_execute:  # a history of an earlier release
                auth = await workflow.execute_local_activity_method(
                    RunActivities.authorize, AuthorizeInput(run_id=inp.run_id), **policies.DB_STEP
                )
                if not auth.allowed:
                    return await self._refuse(inp, auth.error_code, auth.error_message)
            execution = 0
            resume: ExecuteInput | None = None
            while True:
                try:
                    result: ExecuteResult = await workflow.execute_activity_method(
                        RunActivities.execute,
                        ExecuteInput(
                            run_id=inp.run_id,
                            attempt_base=execution * ATTEMPTS_PER_EXECUTION,
                            resuming=resume is not None,
                            resume_value=None if resume is None else resume.resume_value,
                            authorize=inp.authorize_in_execute and execution == 0,
                        ),
                        start_to_close_timeout=policies.GRAPH_START_TO_CLOSE,
                        schedule_to_close_timeout=policies.GRAPH_SCHEDULE_TO_CLOSE,
                        heartbeat_timeout=policies.GRAPH_HEARTBEAT,
                        retry_policy=policies.GRAPH_RETRY,
                    )
                    if result.refused is not None:
                        return await self._refuse(inp, result.refused, result.refused_message)
                    if not result.interrupts:
                        break
                    # Paused by the graph: the worker slot is free, the wait is Temporal's.
                    given = await self._wait_for_input(inp, result.interrupts)
                    if given is None:
                        return await self._finish(
                            inp,
                            RunStatus.ERROR,
                            code=ErrorCode.INPUT_TIMEOUT,
                            message=f"no resume within {inp.input_wait_seconds}s",
                        )
                    resume = ExecuteInput(run_id=inp.run_id, resuming=True, resume_value=given[0])
                    execution += 1
                except ActivityError as err:
                    code, message, details = _failure(err)
                    if code != ErrorCode.CREDITS_EXHAUSTED:
                        raise
                    if not await self._wait_for_credits(inp, needed=int(details[0]) if details else 0):
                        return await self._finish(
                            inp,
                            RunStatus.ERROR,
                            code=ErrorCode.INSUFFICIENT_CREDITS,
                            message=f"no top-up within {inp.credit_wait_seconds}s: {message}",
                        )
                    execution += 1
                    resume = None
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                # The run was cancelled while the graph ran: record it as cancelled, not failed.
                await self._finish(
                    inp, RunStatus.CANCELLED, code=ErrorCode.RUN_CANCELLED, message="cancelled"
                )
                raise asyncio.CancelledError("run cancelled") from err
            code, message, _ = _failure(err)
            return await self._finish(inp, _refusal_status(code), code=code, message=message)
        except asyncio.CancelledError:
            # Cancellation was delivered; recording it is a new, uncancelled step.
            await self._finish(inp, RunStatus.CANCELLED, code=ErrorCode.RUN_CANCELLED, message="cancelled")
            raise
        if result.finished is not None:
            # The execution ended the run in its last statement: nothing is left to record.
            return GraphRunResult(
                run_id=inp.run_id,
                status=result.finished,
                error_code=None,
                model_calls=result.model_calls,
                charged_credits=result.charged_credits,
            )
        return await self._finish(
            inp, RunStatus.SUCCESS, model_calls=result.model_calls, charged_credits=result.charged_credits
        )

    async def _refuse(self, inp: GraphRunInput, code: str | None, message: str | None) -> GraphRunResult:
        """The run's preflight refused it: recorded as ``skipped`` (a grant's refusal) or ``error``."""
        if code == ErrorCode.RUN_NOT_FOUND:
            # No run row: nothing to finalize. Failing frees the workflow id for a retried start.
            raise ApplicationError(message or "run not found", type=ErrorCode.RUN_NOT_FOUND)
        return await self._finish(inp, _refusal_status(code), code=code, message=message)

    async def _wait_for_credits(self, inp: GraphRunInput, *, needed: int) -> bool:
        """Pause durably; True when credits arrived (resume), False when the wait timed out."""
        seen = self._credit_signals
        paused = await workflow.execute_local_activity_method(
            RunActivities.pause, PauseInput(run_id=inp.run_id, needed_credits=needed), **policies.DB_STEP
        )
        if not paused.resume_now:
            try:
                await workflow.wait_condition(
                    lambda: self._credit_signals > seen, timeout=policies.seconds(inp.credit_wait_seconds)
                )
            except TimeoutError:
                return False
        await workflow.execute_local_activity_method(
            RunActivities.resume, ResumeInput(run_id=inp.run_id), **policies.DB_STEP
        )
        return True

    async def _wait_for_input(self, inp: GraphRunInput, interrupts: list[Any]) -> list[Any] | None:
        """Record the pause and wait for a resume: ``[value]``, or None when the wait timed out."""
        seen = len(self._resumes)
        await workflow.execute_local_activity_method(
            RunActivities.pause_for_input,
            InputPauseInput(run_id=inp.run_id, interrupts=interrupts),
            **policies.DB_STEP,
        )
        try:
            await workflow.wait_condition(
                lambda: len(self._resumes) > seen, timeout=policies.seconds(inp.input_wait_seconds)
            )
        except TimeoutError:
            return None
        await workflow.execute_local_activity_method(
            RunActivities.resume, ResumeInput(run_id=inp.run_id), **policies.DB_STEP
        )
        return [self._resumes[seen]]

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
            **policies.DB_STEP,
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


def _failure(err: ActivityError) -> tuple[str, str, list[Any]]:
    cause = err.cause
    while isinstance(cause, FailureError) and not isinstance(cause, ApplicationError):
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return cause.type or ErrorCode.GRAPH_FAILED, cause.message, list(cause.details)
    return ErrorCode.GRAPH_FAILED, str(err.cause or err), []
