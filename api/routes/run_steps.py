"""A run's durable steps: the checkpoints it passed, and resuming a run paused for input.

``GET /runs/{id}/checkpoints`` lists the run's super-steps from its ``step`` events (each names the
LangGraph checkpoint saved after it and the run's cost so far). ``POST /runs/{id}/resume`` sends the
value a run paused by ``interrupt()`` (``awaiting_input``) or by a tool approval
(``awaiting_approval``, value ``{"approved": bool, "reason"?: str}``) continues with; any other run
answers 409 ``run_not_paused``. The workflow, not this route, moves the run back to ``running``.
"""

from __future__ import annotations

from fastapi import APIRouter, status
from temporalio.service import RPCError

from api.deps import StateDep, UserDep
from api.errors import Conflict, ServiceUnavailable, Unprocessable
from api.openapi import errors
from api.params import ObjectId
from api.presenters import run_out
from api.routes.runs import own_run
from api.schemas import CheckpointListResponse, CheckpointOut, ResumeRequest, RunOut
from db import events
from runledger.contracts.errors import ErrorCode
from runledger.contracts.runs import RESUME_SIGNAL, PauseReason, RunStatus

router = APIRouter(prefix="/api/v1", tags=["runs"])

_INPUT_REASONS = frozenset({PauseReason.AWAITING_INPUT, PauseReason.AWAITING_APPROVAL})


@router.get("/runs/{run_id}/checkpoints", response_model=CheckpointListResponse)
async def run_checkpoints(run_id: ObjectId, principal: UserDep, state: StateDep) -> CheckpointListResponse:
    run = await own_run(state.database, principal, run_id)
    async with state.database.transaction() as session:
        steps = await events.of_kind(session, run_id=run.run_id, event="step")
    return CheckpointListResponse(
        checkpoints=[
            CheckpointOut(
                checkpoint_id=e.data["checkpoint_id"],
                step=e.data["step"],
                node=",".join(e.data["nodes"]),
                nodes=e.data["nodes"],
                created_at=e.created_at,
                cost_credits_so_far=e.data["cost_credits_so_far"],
            )
            for e in steps
        ]
    )


@router.post(
    "/runs/{run_id}/resume",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RunOut,
    responses=errors(409, 503),
)
async def resume_run(run_id: ObjectId, body: ResumeRequest, principal: UserDep, state: StateDep) -> RunOut:
    run = await own_run(state.database, principal, run_id)
    if run.status != RunStatus.PAUSED or run.pause_reason not in _INPUT_REASONS:
        raise Conflict(
            f"run {run_id} is {run.status}"
            + (f" ({run.pause_reason})" if run.pause_reason else "")
            + ", not waiting for input",
            code=ErrorCode.RUN_NOT_PAUSED,
        )
    if body.value is None:
        # LangGraph reads Command(resume=None) as no resume at all.
        raise Unprocessable("value must not be null: it is what the graph's interrupt() returns")
    if run.pause_reason == PauseReason.AWAITING_APPROVAL and not (
        isinstance(body.value, dict) and isinstance(body.value.get("approved"), bool)
    ):
        raise Unprocessable(
            'an approval is resumed with {"value": {"approved": true|false, "reason": "..."}}'
        )
    try:
        await state.temporal.get_workflow_handle(run.workflow_id).signal(RESUME_SIGNAL, {"value": body.value})
    except RPCError as exc:
        raise ServiceUnavailable(f"Temporal is unavailable: {exc.message}") from exc
    return run_out(state.settings, run)
