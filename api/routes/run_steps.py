"""A run's durable steps: the checkpoints it passed, and resuming a run paused for input.

``GET /runs/{id}/checkpoints`` lists the run's super-steps from its ``step`` events (each names the
LangGraph checkpoint saved after it and the run's cost so far). ``POST /runs/{id}/resume`` sends the
value a run paused by ``interrupt()`` (``awaiting_input``) or by a tool approval
(``awaiting_approval``, value ``{"approved": bool, "reason"?: str}``) continues with; any other run
answers 409 ``run_not_paused``. The workflow, not this route, moves the run back to ``running``.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from api import run_service
from api.deps import StateDep, UserDep
from api.openapi import errors
from api.params import ObjectId
from api.presenters import run_out
from api.run_service import own_run
from api.schemas import CheckpointListResponse, CheckpointOut, ResumeRequest, RunOut
from db import events

router = APIRouter(prefix="/api/v1", tags=["runs"])


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
    await run_service.resume(state.temporal, run, body.value)
    return run_out(state.settings, run)
