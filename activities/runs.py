"""The three activities of a graph run: authorize (preflight), execute (the graph, metered) and
finalize (the run row's terminal status).

Failures that a retry cannot fix raise ``ApplicationError(type=<stable code>, non_retryable=True)``;
everything else (database or provider trouble) raises plainly and Temporal retries it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.runnables import RunnableConfig
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.events import tool_event_sink
from activities.finalize import finalize_run
from activities.metering import CreditsExhaustedError, GrantDeniedError, LedgerMeter, RunNotRunningError
from activities.tool_effects import PostgresEffects, unmetered_recorder
from db import events, grants, ledger, reservations, runs
from db.session import Database
from runledger import tools
from runledger.config import Settings
from runledger.contracts.catalog import estimate_run_credits
from runledger.contracts.errors import ErrorCode
from runledger.contracts.events import status_event
from runledger.contracts.grants import check_grant
from runledger.contracts.runs import (
    TERMINAL_STATUSES,
    AuthorizeInput,
    AuthorizeResult,
    ExecuteInput,
    ExecuteResult,
    FinalizeInput,
    FinalizeResult,
    PauseInput,
    PauseResult,
    ResumeInput,
    RunStatus,
)
from runledger.llm import LiteLLMGateway, UnpricedModelError, bind
from runledger.llm.gateway import ModelGatewayError
from runledger.projects import GraphRegistry, json_output
from runledger.telemetry import RunRef, RunTracer
from runledger.tools.langchain import PASSTHROUGH, guard_graph

RUN_NOT_VISIBLE = "run_not_visible"
#: With the DB retry policy's backoff (0.2 s doubling, capped at 10 s) this waits about two minutes.
RUN_NOT_VISIBLE_ATTEMPTS = 18
HEARTBEAT_EVERY_SECONDS = 5.0


async def _heartbeat_while_running() -> None:
    """A killed worker stops heartbeating, so Temporal retries the graph elsewhere within the
    heartbeat timeout instead of waiting out the whole start-to-close timeout."""
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)


def _run_config(run_id: str, graph_id: str, state_key: str | None) -> RunnableConfig:
    """The RunnableConfig of a run's execution (and of a factory's call): its LangGraph thread is
    the run's ``state_key``, else the run (SPEC §2)."""
    return {"configurable": {"thread_id": state_key or run_id, "run_id": run_id, "graph_id": graph_id}}


class RunActivities:
    def __init__(
        self,
        *,
        database: Database,
        gateway: LiteLLMGateway,
        settings: Settings,
        registry: GraphRegistry,
        tracer: RunTracer | None = None,
    ) -> None:
        self._db = database
        self._gateway = gateway
        self._settings = settings
        #: The graphs this worker serves and published (loaded once at start).
        self._registry = registry
        #: Spans of the run (Langfuse when configured); without one, plain no-op-cheap OTel spans.
        self._tracer = tracer or RunTracer()

    @activity.defn(name="authorize_run")
    async def authorize(self, inp: AuthorizeInput) -> AuthorizeResult:
        """Preflight: the account must cover the run's estimate. Moves the run to ``running``."""
        async with self._db.transaction() as session:
            run = await runs.get_run(session, run_id=inp.run_id)
            if run is None:
                # The API starts the workflow inside its transaction and commits right after, so a
                # missing row is almost always "not committed yet": retry. A row that never comes
                # belongs to a start whose transaction rolled back after Temporal took the workflow
                # (e.g. the start RPC timed out): give up so the workflow fails and the id is free.
                if activity.info().attempt >= RUN_NOT_VISIBLE_ATTEMPTS:
                    return AuthorizeResult(
                        allowed=False,
                        error_code=ErrorCode.RUN_NOT_FOUND,
                        error_message=f"run {inp.run_id} was never recorded",
                    )
                raise ApplicationError(f"run {inp.run_id} is not visible yet", type=RUN_NOT_VISIBLE)
            if run.status in TERMINAL_STATUSES:
                return AuthorizeResult(allowed=False, error_code=run.error_code or run.status)
            if run.status == RunStatus.PENDING:
                loaded = self._registry.get(run.graph_id)
                if loaded is None:
                    return AuthorizeResult(
                        allowed=False, error_code=ErrorCode.GRAPH_NOT_FOUND, error_message=run.graph_id
                    )
                if run.grant_id is not None:
                    grant = await grants.get_grant(session, grant_id=run.grant_id)
                    denied = check_grant(
                        None if grant is None else grants.view(grant),
                        graph_id=run.graph_id,
                        now=await grants.database_now(session),
                        next_cost_credits=self._settings.preflight_credits_per_call,
                    )
                    if denied is not None:
                        return AuthorizeResult(
                            allowed=False, error_code=denied.code, error_message=denied.message
                        )
                needed = estimate_run_credits(
                    loaded.spec, run.input, self._settings.preflight_credits_per_call
                )
                # API runs were given their hold when they were started; this makes the others'.
                hold = await reservations.reserve(
                    session, billing_account_id=run.billing_account_id, run_id=run.run_id, amount=needed
                )
                if not hold.ok:
                    return AuthorizeResult(
                        allowed=False,
                        error_code=ErrorCode.INSUFFICIENT_CREDITS,
                        error_message=f"{hold.available} credits are available; the run's estimate is {needed}",
                    )
                if await runs.transition(session, run_id=inp.run_id, to=RunStatus.RUNNING):
                    await events.append(session, run_id=inp.run_id, events=[status_event(RunStatus.RUNNING)])
        return AuthorizeResult(allowed=True)

    @activity.defn(name="execute_graph")
    async def execute(self, inp: ExecuteInput) -> ExecuteResult:
        """Run the graph with every model call metered into the ledger."""
        async with self._db.transaction() as session:
            run = await runs.get_run(session, run_id=inp.run_id)
            loaded = None if run is None else self._registry.get(run.graph_id)
            if run is not None and run.status == RunStatus.RUNNING and loaded is not None:
                await runs.set_graph_version(session, run_id=run.run_id, graph_version=loaded.spec.version)
        if run is None or run.status != RunStatus.RUNNING:
            status = None if run is None else run.status
            raise ApplicationError(
                f"run {inp.run_id} is not running (status {status})",
                type="run_not_running",
                non_retryable=True,
            )
        if loaded is None:
            raise ApplicationError(run.graph_id, type=ErrorCode.GRAPH_NOT_FOUND, non_retryable=True)
        attempt = inp.attempt_base + activity.info().attempt
        meter = LedgerMeter(
            database=self._db,
            run_id=run.run_id,
            graph_id=run.graph_id,
            billing_account_id=run.billing_account_id,
            attempt=attempt,
            markup=self._settings.markup,
            grant_id=run.grant_id,
            call_estimate_credits=self._settings.preflight_credits_per_call,
            tracer=self._tracer,
        )
        traced_run = RunRef(
            run_id=run.run_id, graph_id=run.graph_id, billing_account_id=run.billing_account_id
        )
        # The graph may use exactly the tools its catalog entry declares (DENY_BY_DEFAULT_TOOLS);
        # its write tools' results are recorded once (EXACTLY_ONCE_TOOL_EFFECTS).
        tool_runner = tools.ToolRunner(
            policy=tools.AllowList(frozenset(loaded.spec.tool_ids)),
            emit=tool_event_sink(self._db, run.run_id),
            trace=lambda tool_id, args: self._tracer.tool_call(
                traced_run, attempt=attempt, name=tool_id, input=args
            ),
            run_id=run.run_id,
            write_tools=frozenset(loaded.spec.write_tools),
            effects=PostgresEffects(self._db, run_id=run.run_id, attempt=attempt),
            passthrough=PASSTHROUGH,
        )
        heartbeat = asyncio.create_task(_heartbeat_while_running())
        try:
            with (
                self._tracer.execution(traced_run, attempt=attempt, input=run.input) as execution,
                bind(
                    self._gateway.invoke,
                    default_model=loaded.spec.model or self._settings.default_model,
                    meter=meter,
                    on_unmetered=unmetered_recorder(self._db, run_id=run.run_id, attempt=attempt),
                ) as model_binding,
                tools.bind(tool_runner),
            ):
                # A factory is called here, per run, with the run's config (LangGraph Platform's rule).
                config = _run_config(run.run_id, run.graph_id, run.state_key)
                try:
                    async with loaded.open(config) as graph:
                        # Every tool of its ToolNodes runs through the runner (allowlist, effects).
                        guard_graph(graph)
                        state: Any = await graph.ainvoke(dict(run.input), config)
                finally:
                    # Calls that bypassed the meter are recorded even when the graph failed.
                    await model_binding.drain()
                # The graph's final state, JSON-safe (LangChain messages as their dicts).
                output = json_output(state)
                execution.record(output)
        except GrantDeniedError as exc:
            raise ApplicationError(str(exc), type=exc.code, non_retryable=True) from exc
        except RunNotRunningError as exc:
            raise ApplicationError(str(exc), type="run_not_running", non_retryable=True) from exc
        except CreditsExhaustedError as exc:
            raise ApplicationError(
                str(exc), exc.needed, type=ErrorCode.CREDITS_EXHAUSTED, non_retryable=True
            ) from exc
        except UnpricedModelError as exc:
            raise ApplicationError(str(exc), type=ErrorCode.MODEL_NOT_PRICED, non_retryable=True) from exc
        except ModelGatewayError as exc:
            # Transient by default: Temporal retries it; settled calls are not repeated.
            raise ApplicationError(str(exc), type=ErrorCode.MODEL_PROVIDER_ERROR) from exc
        except Exception as exc:
            # A bug or bad state in graph code: retrying runs the same code again, so stop here.
            raise ApplicationError(
                f"{type(exc).__name__}: {exc}", type=ErrorCode.GRAPH_FAILED, non_retryable=True
            ) from exc
        finally:
            heartbeat.cancel()
        async with self._db.transaction() as session:
            calls, credits = await ledger.run_charge_totals(session, run_id=run.run_id)
            await runs.set_output(
                session, run_id=run.run_id, output=output, model_calls=calls, cost_credits=credits
            )
        return ExecuteResult(model_calls=calls, charged_credits=credits)

    @activity.defn(name="pause_run")
    async def pause(self, inp: PauseInput) -> PauseResult:
        """Pause a run for credits. The account row is locked while the run is marked paused, so a
        top-up either commits first (and is seen here: resume at once) or after (and then finds the
        run paused and signals it): no top-up is missed."""
        async with self._db.transaction() as session:
            run = await runs.get_run(session, run_id=inp.run_id)
            if run is None:
                raise ApplicationError(
                    f"run {inp.run_id} not found", type=ErrorCode.RUN_NOT_FOUND, non_retryable=True
                )
            spendable = await reservations.spendable_for_run(
                session, billing_account_id=run.billing_account_id, run_id=run.run_id, lock=True
            )
            if await runs.transition(
                session,
                run_id=inp.run_id,
                to=RunStatus.PAUSED,
                values={"pause_reason": ErrorCode.INSUFFICIENT_CREDITS},
            ):
                await events.append(
                    session,
                    run_id=inp.run_id,
                    events=[status_event(RunStatus.PAUSED, pause_reason=ErrorCode.INSUFFICIENT_CREDITS)],
                )
        return PauseResult(resume_now=spendable >= inp.needed_credits)

    @activity.defn(name="resume_run")
    async def resume(self, inp: ResumeInput) -> FinalizeResult:
        async with self._db.transaction() as session:
            changed = await runs.transition(session, run_id=inp.run_id, to=RunStatus.RUNNING)
            if changed:
                await events.append(session, run_id=inp.run_id, events=[status_event(RunStatus.RUNNING)])
        return FinalizeResult(status=RunStatus.RUNNING, changed=changed)

    @activity.defn(name="finalize_run")
    async def finalize(self, inp: FinalizeInput) -> FinalizeResult:
        """Record the run's terminal status. Idempotent: a finished run is never moved again."""
        return await finalize_run(self._db, self._tracer, inp)
