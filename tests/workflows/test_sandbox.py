"""TEMPORAL_DETERMINISM at run time: the production worker's sandbox refuses the clock, randomness and
I/O in workflow code (``runledger.worker.WORKFLOW_RUNNER``). This is what passing every module through
the sandbox, or running workflows unsandboxed, would lose: those were measured about a fifth faster
and rejected."""

from __future__ import annotations

import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from runledger.worker import WORKFLOW_RUNNER
from tests.helpers import eventually
from tests.workflows.sandbox_probe import SandboxProbe


async def _task_failure(handle: WorkflowHandle[SandboxProbe, str]) -> str | None:
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            return str(event.workflow_task_failed_event_attributes.failure.message)
    return None


@pytest.mark.parametrize(
    ("what", "refused"),
    [("clock", "datetime.datetime.now"), ("random", "random.random"), ("io", "pathlib.Path.read_text")],
)
async def test_TEMPORAL_DETERMINISM_the_worker_sandbox_refuses_clock_randomness_and_io(
    client: Client, what: str, refused: str
) -> None:
    queue = f"sandbox-{uuid.uuid4()}"
    async with Worker(client, task_queue=queue, workflows=[SandboxProbe], workflow_runner=WORKFLOW_RUNNER):
        allowed = await client.execute_workflow(
            SandboxProbe.run, "deterministic", id=f"probe-{uuid.uuid4()}", task_queue=queue
        )
        assert allowed
        handle = await client.start_workflow(
            SandboxProbe.run, what, id=f"probe-{uuid.uuid4()}", task_queue=queue
        )
        message = await eventually(lambda: _task_failure(handle), until=lambda m: m is not None, within=20)
        await handle.terminate("probe done")
    assert message is not None
    assert "Cannot access" in message, message
    assert refused.rsplit(".", 1)[-1] in message, message
