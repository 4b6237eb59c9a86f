"""A run's preflight (authorize): the account must cover the run's estimate, its grant must allow it,
its thread must be free; then the run moves to ``running``.

Runs today authorize as the first statement of their execute activity; runs of earlier releases
replay their ``authorize_run`` local activity. Both call :func:`authorize_run`. A refusal is an
:class:`AuthorizeResult` with a stable code, never an exception; a run row that is not visible yet
is retried (``RUN_NOT_VISIBLE``) until ``not_found_after`` attempts, then refused ``run_not_found``.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from db import events, grants, lifecycle, reservations, runs
from db.session import Database
from runledger.config import Settings
from runledger.contracts.catalog import estimate_run_credits, per_call_credits
from runledger.contracts.errors import ErrorCode
from runledger.contracts.events import status_event
from runledger.contracts.grants import check_grant
from runledger.contracts.runs import ON_THREAD_STATUSES, TERMINAL_STATUSES, AuthorizeResult, RunStatus
from runledger.llm import model_price
from runledger.projects import GraphRegistry

RUN_NOT_VISIBLE = "run_not_visible"


async def authorize_run(
    database: Database,
    registry: GraphRegistry,
    settings: Settings,
    *,
    run_id: str,
    attempt: int,
    not_found_after: int,
) -> AuthorizeResult:
    """Authorize the run (see the module docstring); idempotent: a run already ``running`` is allowed."""
    # Most runs are API runs, whose hold and thread check the API made with the row: one
    # statement moves those (no lock on the account, no transaction around it).
    if await database.single_statement(
        lambda conn: lifecycle.start_running(
            conn,
            run_id=run_id,
            graphs=registry.graphs.keys(),
            busy_statuses=ON_THREAD_STATUSES,
            event=status_event(RunStatus.RUNNING),
        )
    ):
        return AuthorizeResult(allowed=True)
    async with database.transaction() as session:
        run = await runs.get_run(session, run_id=run_id)
        if run is None:
            # Every starter commits the row before it starts the workflow, so a missing row is a
            # start undone after Temporal took the workflow (or, rarely, not visible yet): give up
            # after a few attempts so the workflow fails and its id is free for a retried start.
            if attempt >= not_found_after:
                return AuthorizeResult(
                    allowed=False,
                    error_code=ErrorCode.RUN_NOT_FOUND,
                    error_message=f"run {run_id} was never recorded",
                )
            raise ApplicationError(f"run {run_id} is not visible yet", type=RUN_NOT_VISIBLE)
        if run.status in TERMINAL_STATUSES:
            return AuthorizeResult(allowed=False, error_code=run.error_code or run.status)
        if run.status == RunStatus.PENDING:
            loaded = registry.get(run.graph_id)
            if loaded is None:
                return AuthorizeResult(
                    allowed=False, error_code=ErrorCode.GRAPH_NOT_FOUND, error_message=run.graph_id
                )
            needed = estimate_run_credits(
                loaded.spec,
                run.input,
                model_price(loaded.spec.model or settings.default_model),
                settings.markup,
            )
            if run.grant_id is not None:
                grant = await grants.get_grant(session, grant_id=run.grant_id)
                denied = check_grant(
                    None if grant is None else grants.view(grant),
                    graph_id=run.graph_id,
                    now=await grants.database_now(session),
                    # Room for the first call at its maximum; every call is checked exactly.
                    next_cost_credits=per_call_credits(loaded.spec, needed),
                )
                if denied is not None:
                    return AuthorizeResult(
                        allowed=False, error_code=denied.code, error_message=denied.message
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
            if run.state_key is not None:
                other = await runs.run_on_thread(
                    session,
                    billing_account_id=run.billing_account_id,
                    state_key=run.state_key,
                    except_run_id=run.run_id,
                    statuses=ON_THREAD_STATUSES,
                )
                if other is not None:  # a scheduled or webhook slot while its thread is busy
                    return AuthorizeResult(
                        allowed=False,
                        error_code=ErrorCode.THREAD_BUSY,
                        error_message=f"run {other} of this state_key has not finished",
                    )
            if await runs.transition(session, run_id=run_id, to=RunStatus.RUNNING):
                await events.append(session, run_id=run_id, events=[status_event(RunStatus.RUNNING)])
    return AuthorizeResult(allowed=True)
