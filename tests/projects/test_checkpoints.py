"""COMPLETED_STEPS_NEVER_RERUN and LangGraph threads, on real Postgres and Temporal: every run is
checkpointed after each super-step in Postgres, a retried execution continues after the last
completed step (a node's external side effect happens once, a paid call is made and billed once),
and runs of one ``state_key`` continue one thread — per billing account, one run at a time."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from runledger.llm import LiteLLMGateway
from runledger.worker import load_graphs, publish_catalog
from tests.conftest import api_client
from tests.db.queries import rows, scalar
from tests.fakes.openai_server import FakeProvider
from tests.helpers import Tenant, create_user, eventually, read_events, start_run, wait_for_run
from tests.projects.conftest import Fresh, serving
from tests.projects.helpers import write_project

#: Three steps: a paid model call, an external side effect that must happen once, then ``{finish}``.
THREE_STEPS = '''
    import asyncio
    from pathlib import Path

    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    from runledger.sdk import ChatModel

    ROOT = Path({root!r})


    class State(TypedDict, total=False):
        topic: str
        draft: str
        count: int
        done: bool


    async def write(state: State) -> State:
        """Step 1: one paid model call."""
        return {{"draft": (await ChatModel().ainvoke([("user", f"Write about {{state['topic']}}")])).text}}


    def count(state: State) -> State:
        """Step 2: an external side effect that must happen once."""
        counter = ROOT / "counter"
        n = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(n + 1))
        return {{"count": n + 1}}

{finish}

    builder = StateGraph(State)
    builder.add_node("write", write)
    builder.add_node("count", count)
    builder.add_node("finish", finish)
    builder.add_edge(START, "write")
    builder.add_edge("write", "count")
    builder.add_edge("count", "finish")
    builder.add_edge("finish", END)
    graph = builder.compile()
'''

FAILS_ONCE = '''
    def finish(state: State) -> State:
        """Step 3: the network fails the first time."""
        failed = ROOT / "failed"
        if not failed.exists():
            failed.write_text("failed")
            raise ConnectionError("the network dropped")
        return {"done": True}
'''

WAITS_FOR_RELEASE = '''
    async def finish(state: State) -> State:
        """Step 3 waits to be released: the test kills the worker while it waits."""
        (ROOT / "finish-started").write_text("yes")
        while not (ROOT / "release").exists():
            await asyncio.sleep(0.1)
        return {"done": True}
'''

THREAD = """
    import operator
    from typing import Annotated

    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict


    class State(TypedDict, total=False):
        text: str
        seen: Annotated[list[str], operator.add]


    def remember(state: State) -> State:
        return {"seen": [state["text"]]}


    builder = StateGraph(State)
    builder.add_node("remember", remember)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", END)
    graph = builder.compile()
"""


def _project(root: Path) -> Path:
    files = {
        "steps.py": THREE_STEPS.format(root=str(root), finish=FAILS_ONCE),
        "thread.py": THREAD,
    }
    return write_project(
        root,
        files,
        {
            "dependencies": ["."],
            "graphs": {"steps": "./steps.py:graph", "thread": "./thread.py:graph"},
            "runledger": {"graphs": {"steps": {"max_model_calls": 1}, "thread": {"max_model_calls": 0}}},
        },
    )


def _served(fresh: Fresh, config: Path) -> Fresh:
    return dataclasses.replace(fresh, settings=fresh.settings.model_copy(update={"graphs_config": config}))


async def test_COMPLETED_STEPS_NEVER_RERUN_a_retried_execution_continues_after_the_last_step(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway, fake_provider: FakeProvider
) -> None:
    root = tmp_path / "proj"
    fresh = _served(fresh, _project(root))
    calls_before = fake_provider.log.count()
    async with serving(client, fresh, gateway), api_client(fresh.settings, fresh.database, client) as api:
        user = await create_user(api, credits=5_000_000)
        started = await start_run(api, user, "langgraph:steps", {"input": {"topic": "tides"}})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        run = await wait_for_run(api, user, run_id, within=120)
        events = await read_events(api, user, run_id)
    assert run["status"] == "success", run
    assert run["output"]["done"] is True
    assert run["output"]["count"] == 1
    # Node 3 failed once and its execution was retried: node 2's side effect happened once, the
    # paid call of node 1 was made once and billed once.
    assert (root / "failed").exists()
    assert (root / "counter").read_text() == "1"
    assert fake_provider.log.count() - calls_before == 1
    receipts = await rows(fresh.database, "SELECT * FROM charge_receipts WHERE run_id = :r", r=run_id)
    assert len(receipts) == 1 == run["model_calls"]
    attempts = await scalar(
        fresh.database, "SELECT count(DISTINCT attempt) FROM model_calls WHERE run_id = :r", r=run_id
    )
    assert attempts == 1  # the retried attempt made no model call at all
    steps = [e.data for e in events if e.event == "step"]
    assert [s["nodes"] for s in steps] == [["write"], ["count"], ["finish"]]
    assert [s["step"] for s in steps] == [1, 2, 3]
    assert (
        steps[0]["cost_credits_so_far"] == receipts[0]["charged_credits"] == steps[-1]["cost_credits_so_far"]
    )
    assert len({s["checkpoint_id"] for s in steps}) == 3
    # The checkpoints are in Postgres, on the run's own thread.
    saved = await scalar(fresh.database, "SELECT count(*) FROM checkpoints WHERE thread_id = :r", r=run_id)
    assert saved >= 4


async def _thread_run(api: httpx.AsyncClient, user: Tenant, text: str, key: str = "chat-1") -> dict[str, Any]:
    started = await start_run(api, user, "langgraph:thread", {"input": {"text": text}, "state_key": key})
    assert started.status_code == 202, started.text
    return await wait_for_run(api, user, started.json()["run_id"], within=60)


async def test_runs_of_one_state_key_continue_one_thread_per_account(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway
) -> None:
    fresh = _served(fresh, _project(tmp_path / "proj"))
    async with serving(client, fresh, gateway), api_client(fresh.settings, fresh.database, client) as api:
        alice = await create_user(api, credits=1_000_000, name="alice")
        bob = await create_user(api, credits=1_000_000, name="bob")
        first = await _thread_run(api, alice, "hello")
        second = await _thread_run(api, alice, "again")
        other_key = await _thread_run(api, alice, "elsewhere", key="chat-2")
        bobs = await _thread_run(api, bob, "mine")  # the same state_key text, another account
    assert first["output"]["seen"] == ["hello"]
    assert second["output"]["seen"] == ["hello", "again"]  # the second run saw the first's state
    assert other_key["output"]["seen"] == ["elsewhere"]
    assert bobs["output"]["seen"] == ["mine"]


async def test_a_second_start_on_a_busy_thread_is_refused_409_thread_busy(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway, fake_provider: FakeProvider
) -> None:
    fresh = _served(fresh, _project(tmp_path / "proj"))
    async with api_client(fresh.settings, fresh.database, client) as api:
        user = await create_user(api, credits=1_000_000)
        # The catalog is published but no worker polls yet: the first run stays on its thread.
        await publish_catalog(fresh.database, load_graphs(fresh.settings), fresh.settings.default_model)
        first = await start_run(api, user, "langgraph:thread", {"input": {"text": "a"}, "state_key": "k"})
        assert first.status_code == 202, first.text
        busy = await start_run(api, user, "langgraph:thread", {"input": {"text": "b"}, "state_key": "k"})
        assert busy.status_code == 409, busy.text
        assert busy.json()["error"]["code"] == "thread_busy"
        other = await start_run(api, user, "langgraph:thread", {"input": {"text": "c"}, "state_key": "other"})
        assert other.status_code == 202, other.text
        runs = await scalar(
            fresh.database,
            "SELECT count(*) FROM graph_runs WHERE billing_account_id = :a",
            a=user.billing_account_id,
        )
        assert runs == 2  # the refused start left nothing
        async with serving(client, fresh, gateway):
            done = await wait_for_run(api, user, first.json()["run_id"], within=60)
        assert done["output"]["seen"] == ["a"]
        again = await start_run(api, user, "langgraph:thread", {"input": {"text": "b"}, "state_key": "k"})
        assert again.status_code == 202, again.text


async def test_COMPLETED_STEPS_NEVER_RERUN_kill_9_of_the_worker_inside_step_3(
    tmp_path: Path, fresh: Fresh, client: Client, fake_provider: FakeProvider
) -> None:
    root = tmp_path / "proj"
    config = write_project(
        root,
        {"killed.py": THREE_STEPS.format(root=str(root), finish=WAITS_FOR_RELEASE)},
        {
            "dependencies": ["."],
            "graphs": {"killed": "./killed.py:graph"},
            "runledger": {"graphs": {"killed": {"max_model_calls": 1}}},
        },
    )
    settings = fresh.settings
    env = {
        **os.environ,
        "DATABASE_URL": str(settings.database_url),
        "TEMPORAL_ADDRESS": str(settings.temporal_address),
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "RUNLEDGER_DEFAULT_MODEL": settings.default_model,
        "RUNLEDGER_MODEL_API_BASE": str(settings.model_api_base),
        "RUNLEDGER_MODEL_API_KEY": "sk-fake",
        "RUNLEDGER_WORKER_METRICS_PORT": "0",
        "RUNLEDGER_GRAPHS_CONFIG": str(config),
    }

    async def spawn_worker(name: str) -> asyncio.subprocess.Process:
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115, ASYNC230
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "runledger.cli", "worker", env=env, stdout=log, stderr=log
        )

    calls_before = fake_provider.log.count()
    worker = await spawn_worker("worker-1")
    try:
        async with api_client(settings, fresh.database, client) as api:
            user = await create_user(api, credits=5_000_000)

            async def published() -> int:
                return int(
                    await scalar(
                        fresh.database,
                        "SELECT count(*) FROM graph_catalog WHERE graph_id = 'langgraph:killed'",
                    )
                )

            await eventually(published, until=lambda n: n == 1, within=120)
            started = await start_run(api, user, "langgraph:killed", {"input": {"topic": "tides"}})
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]

            async def in_step_3() -> bool:
                return (root / "finish-started").exists()

            await eventually(in_step_3, until=bool, within=120)
            worker.kill()
            await worker.wait()
            (root / "release").write_text("go")
            worker = await spawn_worker("worker-2")
            # Temporal retries the execution once the dead worker's heartbeat times out.
            run = await wait_for_run(api, user, run_id, within=180)
    finally:
        (root / "release").write_text("go")
        if worker.returncode is None:
            worker.terminate()
            await worker.wait()
    assert run["status"] == "success", run
    assert (root / "counter").read_text() == "1"  # step 2 ran once, before the kill
    assert fake_provider.log.count() - calls_before == 1
    receipts = await rows(fresh.database, "SELECT * FROM charge_receipts WHERE run_id = :r", r=run_id)
    assert len(receipts) == 1 == run["model_calls"]
