"""The activities of a graph run: execute (its preflight, then the graph, metered, then its end when
the graph finished), finalize (every other end), the pauses and resumes, and the authorize step of
runs of earlier releases.

Failures that a retry cannot fix raise ``ApplicationError(type=<stable code>, non_retryable=True)``;
database, network and provider trouble is retryable (``activities.failures``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from langchain_core.runnables import RunnableConfig
from pydantic_core import to_jsonable_python
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.authorize import authorize_run
from activities.connections import RunCredentials
from activities.events import tool_event_sink
from activities.failures import execution_failure
from activities.finalize import finalize_run
from activities.graph_steps import checkpoints_for, run_steps, step_sink
from activities.metering import (
    ChargeNotWrittenError,
    CreditsExhaustedError,
    GrantDeniedError,
    LedgerMeter,
    RunNotRunningError,
)
from activities.tool_effects import PostgresEffects, unmetered_recorder
from db import events, ledger, lifecycle, reservations, runs
from db.secrets import SecretBox
from db.session import Database
from runledger import tools
from runledger.config import Settings
from runledger.contracts.errors import ErrorCode
from runledger.contracts.events import status_event
from runledger.contracts.runs import (
    TERMINAL_STATUSES,
    AuthorizeInput,
    AuthorizeResult,
    ExecuteInput,
    ExecuteResult,
    FinalizeInput,
    FinalizeResult,
    InputPauseInput,
    InputPauseResult,
    PauseInput,
    PauseReason,
    PauseResult,
    ResumeInput,
    RunStatus,
    pause_reason_of,
)
from runledger.llm import LiteLLMGateway, ModelGatewayError, UnpricedModelError, bind
from runledger.projects import GraphRegistry, json_output
from runledger.telemetry import RunRef, RunTracer
from runledger.tools.langchain import PASSTHROUGH, guard_graph

#: Exceptions a tool call passes through to the execution instead of returning as a tool error.
RUN_STOPPERS: tuple[type[BaseException], ...] = (
    ModelGatewayError,
    UnpricedModelError,
    CreditsExhaustedError,
    GrantDeniedError,
    RunNotRunningError,
    ChargeNotWrittenError,
)
#: With the DB retry policy's backoff (0.2 s doubling, capped at 10 s) this waits about two minutes.
RUN_NOT_VISIBLE_ATTEMPTS = 18
#: The same for an execution that authorizes (the graph retry policy: 1 s, then 2 s).
EXECUTE_NOT_VISIBLE_ATTEMPTS = 3
HEARTBEAT_EVERY_SECONDS = 5.0

log = structlog.get_logger(__name__)


async def _heartbeat_while_running() -> None:
    """A killed worker stops heartbeating, so Temporal retries the graph elsewhere within the
    heartbeat timeout instead of waiting out the whole start-to-close timeout. The timeout counts
    from the attempt's start, so the first heartbeat is due only after a pause: a run that ends
    sooner sends none (one RPC and one server write less per run)."""
    while True:
        await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)
        activity.heartbeat()


def thread_id(billing_account_id: str, run_id: str, state_key: str | None) -> str:
    """A run's LangGraph thread (SPEC §2): its ``state_key``, else the run. A ``state_key`` is
    scoped to its billing account (``{account}:{state_key}``), so two tenants' keys of the same
    text are two threads."""
    return f"{billing_account_id}:{state_key}" if state_key else run_id


def _run_config(run_id: str, graph_id: str, thread: str) -> RunnableConfig:
    """The RunnableConfig of a run's execution (and of a factory's call). ``run_id`` in it is copied
    by LangGraph into each checkpoint's metadata (see ``activities.graph_steps``)."""
    return {"configurable": {"thread_id": thread, "run_id": run_id, "graph_id": graph_id}}


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
        self._secrets = (
            SecretBox.from_setting(settings.secret_keys.get_secret_value()) if settings.secret_keys else None
        )
        #: The graphs this worker serves and published (loaded once at start), and their versions.
        self._registry = registry
        self._versions = {loaded.spec.graph_id: loaded.spec.version for loaded in registry}
        #: Spans of the run (Langfuse when configured); without one, plain no-op-cheap OTel spans.
        self._tracer = tracer or RunTracer()

    @activity.defn(name="authorize_run")
    async def authorize(self, inp: AuthorizeInput) -> AuthorizeResult:
        """The preflight of a run of an earlier release (today's runs authorize in ``execute``)."""
        return await self._authorize(inp.run_id, not_found_after=RUN_NOT_VISIBLE_ATTEMPTS)

    async def _authorize(self, run_id: str, *, not_found_after: int) -> AuthorizeResult:
        return await authorize_run(
            self._db,
            self._registry,
            self._settings,
            run_id=run_id,
            attempt=activity.info().attempt,
            not_found_after=not_found_after,
        )

    @activity.defn(name="execute_graph")
    async def execute(self, inp: ExecuteInput) -> ExecuteResult:
        """Run the graph with every model call metered into the ledger. It heartbeats while it
        runs, from before its first step: under a burst that step can wait for a database
        connection longer than the heartbeat timeout, and an execution timed out there would be
        retried for nothing."""
        heartbeat = asyncio.create_task(_heartbeat_while_running())
        try:
            return await self._execute(inp)
        except asyncio.CancelledError:
            # Why Temporal took the execution back (a cancelled run, a heartbeat or start-to-close
            # timeout, a worker shutdown): what an operator needs to tell a retry's cause.
            details = activity.cancellation_details()
            log.warning(
                "execution_cancelled",
                run_id=inp.run_id,
                attempt=activity.info().attempt,
                reasons=[] if details is None else [k for k, v in vars(details).items() if v],
            )
            raise
        finally:
            heartbeat.cancel()

    async def _execute(self, inp: ExecuteInput) -> ExecuteResult:
        if inp.authorize:
            auth = await self._authorize(inp.run_id, not_found_after=EXECUTE_NOT_VISIBLE_ATTEMPTS)
            # A run already ``success`` was ended by an earlier attempt: it is answered below.
            if not auth.allowed and auth.error_code != RunStatus.SUCCESS:
                return ExecuteResult(
                    model_calls=0,
                    charged_credits=0,
                    refused=auth.error_code,
                    refused_message=auth.error_message,
                )
        # The version this worker runs recorded and the run read: one statement.
        run = await self._db.single_statement(
            lambda conn: lifecycle.begin_execution(conn, run_id=inp.run_id, versions=self._versions)
        )
        if run is None:
            async with self._db.autocommit() as session:
                row = await runs.get_run(session, run_id=inp.run_id)
            if row is not None and row.status == RunStatus.SUCCESS:
                # An earlier attempt finished the run, and its completion did not reach Temporal.
                return ExecuteResult(
                    model_calls=row.model_calls, charged_credits=row.cost_credits, finished=row.status
                )
            if row is not None and row.status == RunStatus.RUNNING and row.graph_id not in self._versions:
                raise ApplicationError(row.graph_id, type=ErrorCode.GRAPH_NOT_FOUND, non_retryable=True)
            raise ApplicationError(
                f"run {inp.run_id} is not running (status {None if row is None else row.status})",
                type="run_not_running",
                non_retryable=True,
            )
        loaded = self._registry.graphs[run.graph_id]
        fork: tuple[str, str] | None = None
        if run.replay_of is not None and run.replay_from_checkpoint is not None:
            async with self._db.autocommit() as session:
                original = await runs.get_run(session, run_id=run.replay_of)
            if original is not None:
                source = thread_id(original.billing_account_id, original.run_id, original.state_key)
                fork = (source, run.replay_from_checkpoint)
        attempt = inp.attempt_base + activity.info().attempt
        meter = LedgerMeter(
            database=self._db,
            run_id=run.run_id,
            graph_id=run.graph_id,
            billing_account_id=run.billing_account_id,
            attempt=attempt,
            markup=self._settings.markup,
            grant_id=run.grant_id,
            bound=self._gateway.call_bound,
            tracer=self._tracer,
        )
        traced_run = RunRef(
            run_id=run.run_id, graph_id=run.graph_id, billing_account_id=run.billing_account_id
        )
        # The graph may use exactly the tools its catalog entry declares (DENY_BY_DEFAULT_TOOLS);
        # its write tools' results are recorded once (EXACTLY_ONCE_TOOL_EFFECTS).
        tool_runner = tools.ToolRunner(
            policy=tools.AllowList(frozenset(loaded.spec.tool_ids)),
            # A tool that needs a connection gets it when it executes: the one the run's start, its
            # grant or its graph's settings map, if it is the run's account's own.
            credentials=RunCredentials(
                self._db,
                self._secrets,
                billing_account_id=run.billing_account_id,
                run_connections=run.connections,
                grant_id=run.grant_id,
                graph_connections=dict(loaded.connections),
            ),
            approval=frozenset(loaded.spec.approval_tools),
            emit=tool_event_sink(self._db, run.run_id),
            trace=lambda tool_id, args: self._tracer.tool_call(
                traced_run, attempt=attempt, name=tool_id, input=args
            ),
            run_id=run.run_id,
            write_tools=frozenset(loaded.spec.write_tools),
            effects=PostgresEffects(self._db, run_id=run.run_id, attempt=attempt),
            # A model call inside a tool that stops the run (credits, grant, provider, cancel) stops
            # it as anywhere else: it is not the tool's failure to report to the model.
            passthrough=(*PASSTHROUGH, *RUN_STOPPERS),
        )
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
                # What earlier attempts owe is charged first, so their paid calls replay below.
                await meter.settle_owed()
                # A factory is called here, per run, with the run's config (LangGraph Platform's rule).
                thread = thread_id(run.billing_account_id, run.run_id, run.state_key)
                config = _run_config(run.run_id, run.graph_id, thread)
                store = await checkpoints_for(self._db)
                try:
                    async with loaded.open(config) as graph:
                        # Every tool of its ToolNodes runs through the runner (allowlist, effects).
                        guard_graph(graph)
                        outcome = await run_steps(
                            graph,
                            saver=store.saver,
                            run_input=dict(run.input),
                            config=config,
                            run_id=run.run_id,
                            on_step=step_sink(self._db, run.run_id),
                            resuming=inp.resuming,
                            resume=inp.resume_value,
                            fork=fork,
                        )
                finally:
                    # Calls that bypassed the meter are recorded even when the graph failed.
                    await model_binding.drain()
                # The graph's final state, JSON-safe (LangChain messages as their dicts).
                output = json_output(outcome.output)
                execution.record(output)
        except Exception as exc:
            raise execution_failure(exc) from exc
        if outcome.interrupts:
            # Paused inside the graph: the workflow records the pause and waits for a resume.
            async with self._db.autocommit() as session:
                calls, credits = await ledger.run_charge_totals(session, run_id=run.run_id)
            return ExecuteResult(
                model_calls=calls,
                charged_credits=credits,
                interrupts=to_jsonable_python(outcome.interrupts, fallback=str),
            )
        return await self.end_execution(run.run_id, output)

    async def end_execution(self, run_id: str, output: dict[str, Any]) -> ExecuteResult:
        """The graph finished: the run ends here, in one statement (no finalize step after it),
        unless a cancel was asked for meanwhile: then its output and totals are recorded and the
        workflow, which receives the cancel, ends it."""
        ended = await finalize_run(
            self._db,
            self._tracer,
            FinalizeInput(run_id=run_id, status=RunStatus.SUCCESS),
            output=output,
            unless_cancel_requested=True,
        )
        if ended.changed:
            calls, credits = ended.model_calls, ended.cost_credits
        elif ended.status not in TERMINAL_STATUSES:
            calls, credits = await self._db.single_statement(
                lambda conn: lifecycle.record_output(conn, run_id=run_id, output=output)
            )
            return ExecuteResult(model_calls=calls, charged_credits=credits)
        else:  # ended meanwhile: what it cost all the same
            async with self._db.autocommit() as session:
                calls, credits = await ledger.run_charge_totals(session, run_id=run_id)
        return ExecuteResult(model_calls=calls, charged_credits=credits, finished=ended.status)

    @activity.defn(name="pause_for_input")
    async def pause_for_input(self, inp: InputPauseInput) -> InputPauseResult:
        """A graph stopped at ``interrupt()``: the run is ``paused`` (``awaiting_approval`` for a
        tool waiting for approval, else ``awaiting_input``) with what it asked, and an ``interrupt``
        event carries the values. The hold stays; the wait itself is the workflow's."""
        reason = pause_reason_of(inp.interrupts[0]) if inp.interrupts else PauseReason.AWAITING_INPUT
        async with self._db.transaction() as session:
            moved = await runs.transition(
                session,
                run_id=inp.run_id,
                to=RunStatus.PAUSED,
                values={"pause_reason": reason, "pending_input": inp.interrupts},
            )
            if moved:
                await events.append(
                    session,
                    run_id=inp.run_id,
                    events=[
                        ("interrupt", {"pause_reason": reason, "values": inp.interrupts}),
                        status_event(RunStatus.PAUSED, pause_reason=reason),
                    ],
                )
        return InputPauseResult(pause_reason=reason)

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
