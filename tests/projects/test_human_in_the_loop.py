"""Human in the loop on real Postgres and Temporal: a graph's ``interrupt()`` pauses its run
(``awaiting_input``, an ``interrupt`` event, no worker slot held — the run survives the worker
stopping) until ``POST /runs/{id}/resume``; a tool named in the graph's ``approval`` setting pauses
the run before it executes (``awaiting_approval``) and a refusal means it never runs; a paused run
can be cancelled (hold released) and times out ``input_timeout``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from runledger.llm import LiteLLMGateway
from tests.conftest import api_client
from tests.db.queries import rows
from tests.helpers import Tenant, create_user, eventually, read_events, start_run, wait_for_run
from tests.projects.conftest import Fresh, serving
from tests.projects.helpers import write_project

ASK = """
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt
    from typing_extensions import TypedDict


    class State(TypedDict, total=False):
        question: str
        answer: str


    def ask(state: State) -> State:
        return {"answer": f"hello {interrupt({'question': state['question']})}"}


    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    graph = builder.compile()
"""

GUARDED = """
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    from runledger import tools


    class State(TypedDict, total=False):
        zone: str
        result: dict


    async def read_clock(state: State) -> State:
        result = await tools.call("core__current_time", {"timezone": state["zone"]})
        return {"result": {"ok": result.ok, "code": result.error_code, "message": result.message}}


    builder = StateGraph(State)
    builder.add_node("read_clock", read_clock)
    builder.add_edge(START, "read_clock")
    builder.add_edge("read_clock", END)
    graph = builder.compile()
"""


def _project(root: Path) -> Path:
    return write_project(
        root,
        {"ask.py": ASK, "guarded.py": GUARDED},
        {
            "dependencies": ["."],
            "graphs": {"ask": "./ask.py:graph", "guarded": "./guarded.py:graph"},
            "runledger": {
                "graphs": {
                    "ask": {"max_model_calls": 0},
                    "guarded": {
                        "max_model_calls": 0,
                        "tools": ["core__current_time"],
                        "approval": ["core__current_time"],
                    },
                }
            },
        },
    )


def _served(fresh: Fresh, config: Path, **settings: Any) -> Fresh:
    return dataclasses.replace(
        fresh, settings=fresh.settings.model_copy(update={"graphs_config": config, **settings})
    )


async def _paused(api: httpx.AsyncClient, user: Tenant, run_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        body: dict[str, Any] = (await api.get(f"/api/v1/runs/{run_id}", headers=user.headers)).json()
        return body

    return await eventually(probe, until=lambda r: r["status"] in ("paused", "success", "error"), within=60)


async def _resume(api: httpx.AsyncClient, user: Tenant, run_id: str, value: Any) -> httpx.Response:
    return await api.post(f"/api/v1/runs/{run_id}/resume", json={"value": value}, headers=user.headers)


async def test_an_interrupt_pauses_the_run_survives_a_worker_restart_and_resumes_with_the_value(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway
) -> None:
    fresh = _served(fresh, _project(tmp_path / "proj"))
    async with api_client(fresh.settings, fresh.database, client) as api:
        user = await create_user(api, credits=1_000_000)
        async with serving(client, fresh, gateway):
            started = await start_run(api, user, "langgraph:ask", {"input": {"question": "your name?"}})
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            paused = await _paused(api, user, run_id)
        # The worker is gone; the wait is Temporal's.
        assert paused["status"] == "paused", paused
        assert paused["pause_reason"] == "awaiting_input"
        assert paused["pending_input"] == [{"question": "your name?"}]
        assert paused["reservation"]["status"] == "open"  # the hold stays while it waits
        # Resumed while no worker runs: Temporal keeps the signal for the next worker.
        assert (await _resume(api, user, run_id, "Grace")).status_code == 202
        async with serving(client, fresh, gateway):
            done = await wait_for_run(api, user, run_id, within=60)
        assert done["status"] == "success", done
        assert done["output"]["answer"] == "hello Grace"
        assert done["pending_input"] is None
        again = await _resume(api, user, run_id, "Ada")
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "run_not_paused"
        events = await read_events(api, user, run_id)
    kinds = [e.event for e in events]
    assert kinds.index("interrupt") < kinds.index("status", kinds.index("interrupt"))
    (interrupt,) = [e.data for e in events if e.event == "interrupt"]
    assert interrupt == {"pause_reason": "awaiting_input", "values": [{"question": "your name?"}]}
    assert [e.data["status"] for e in events if e.event == "status"] == [
        "pending",
        "running",
        "paused",
        "running",
        "success",
    ]


async def test_a_resumed_value_reaches_the_graph(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway
) -> None:
    fresh = _served(fresh, _project(tmp_path / "proj"))
    async with serving(client, fresh, gateway), api_client(fresh.settings, fresh.database, client) as api:
        user = await create_user(api, credits=1_000_000)
        started = await start_run(api, user, "langgraph:ask", {"input": {"question": "name?"}})
        run_id = started.json()["run_id"]
        assert (await _paused(api, user, run_id))["status"] == "paused"
        bad = await api.post(f"/api/v1/runs/{run_id}/resume", json={}, headers=user.headers)
        assert bad.status_code == 422  # value is required
        null = await _resume(api, user, run_id, None)
        assert null.status_code == 422  # LangGraph reads a null resume as no resume at all
        assert null.json()["error"]["code"] == "validation_error"
        assert (await _resume(api, user, run_id, "Ada")).status_code == 202
        done = await wait_for_run(api, user, run_id, within=60)
    assert done["output"]["answer"] == "hello Ada"


async def test_an_approval_tool_waits_and_a_refusal_never_runs_it(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway
) -> None:
    fresh = _served(fresh, _project(tmp_path / "proj"))
    async with serving(client, fresh, gateway), api_client(fresh.settings, fresh.database, client) as api:
        user = await create_user(api, credits=1_000_000)
        outcomes = {}
        for decision in ({"approved": False, "reason": "not now"}, {"approved": True}):
            started = await start_run(api, user, "langgraph:guarded", {"input": {"zone": "Asia/Tokyo"}})
            run_id = started.json()["run_id"]
            paused = await _paused(api, user, run_id)
            assert paused["status"] == "paused", paused
            assert paused["pause_reason"] == "awaiting_approval"
            (pending,) = paused["pending_input"]
            assert pending["kind"] == "runledger.approval"
            assert pending["tool_id"] == "core__current_time"
            assert pending["args"] == {"timezone": "Asia/Tokyo"}
            # An approval needs a decision.
            vague = await _resume(api, user, run_id, "yes")
            assert vague.status_code == 422
            assert (await _resume(api, user, run_id, decision)).status_code == 202
            done = await wait_for_run(api, user, run_id, within=60)
            assert done["status"] == "success", done
            events = await read_events(api, user, run_id)
            outcomes[decision["approved"]] = (done["output"]["result"], [e.event for e in events])
    refused, refused_events = outcomes[False]
    assert refused["ok"] is False
    assert refused["code"] == "tool_approval_denied"
    assert "not now" in refused["message"]
    assert "tool_call_start" not in refused_events  # the tool never ran
    approved, approved_events = outcomes[True]
    assert approved["ok"] is True
    assert approved_events.count("tool_call_start") == 1


async def test_a_paused_run_can_be_cancelled_and_times_out_input_timeout(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway
) -> None:
    fresh = _served(fresh, _project(tmp_path / "proj"), input_wait_seconds=3)
    async with serving(client, fresh, gateway), api_client(fresh.settings, fresh.database, client) as api:
        user = await create_user(api, credits=1_000_000)
        cancelled = (await start_run(api, user, "langgraph:ask", {"input": {"question": "q"}})).json()[
            "run_id"
        ]
        assert (await _paused(api, user, cancelled))["status"] == "paused"
        await api.post(f"/api/v1/runs/{cancelled}/cancel", headers=user.headers)
        gone = await wait_for_run(api, user, cancelled, within=60)
        timed = (await start_run(api, user, "langgraph:ask", {"input": {"question": "q"}})).json()["run_id"]
        late = await wait_for_run(api, user, timed, within=60)
    assert gone["status"] == "cancelled"
    assert (late["status"], late["error_code"]) == ("error", "input_timeout")
    holds = await rows(
        fresh.database,
        "SELECT status FROM credit_reservations WHERE run_id IN (:a, :b)",
        a=cancelled,
        b=timed,
    )
    assert len(holds) == 2
    assert all(h["status"] != "open" for h in holds)


async def test_the_built_in_careful_agent_waits_for_approval_and_replays_its_last_step_for_nothing(
    api: httpx.AsyncClient, user: Tenant, worker: None
) -> None:
    """The done-criterion of the durable-steps issue, on the built-in graphs ``make run`` serves."""
    started = await start_run(
        api, user, "langgraph:careful_agent", {"input": {"messages": [{"role": "user", "content": "ledger"}]}}
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    paused = await _paused(api, user, run_id)
    assert (paused["status"], paused["pause_reason"]) == ("paused", "awaiting_approval"), paused
    assert paused["pending_input"][0]["tool_id"] == "search_notes"
    assert (await _resume(api, user, run_id, {"approved": True})).status_code == 202
    done = await wait_for_run(api, user, run_id, within=90)
    assert done["status"] == "success", done
    events = await read_events(api, user, run_id)
    assert "tool_call_start" in [e.event for e in events]  # the approved search ran
    steps = (await api.get(f"/api/v1/runs/{run_id}/checkpoints", headers=user.headers)).json()["checkpoints"]
    dry = await api.post(
        f"/api/v1/runs/{run_id}/replay",
        json={"from_checkpoint_id": steps[-1]["checkpoint_id"], "dry_run": True},
        headers=user.headers,
    )
    assert dry.status_code == 200, dry.text
    assert dry.json() == {"estimated_credits": 0, "reused_calls": done["model_calls"]}
