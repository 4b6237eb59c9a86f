"""ReAct agents of a user's project, on real Postgres and Temporal, through the fake provider:
billed once per model call, model-chosen tools under the allowlist (DENY_BY_DEFAULT_TOOLS), write
tools exactly once across a forced retry and a ``kill -9`` of the worker
(EXACTLY_ONCE_TOOL_EFFECTS), and a call that bypasses the meter flagged (NO_UNMETERED_MODEL_CALLS)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from temporalio.client import Client

from activities.reconcile import reconcile_once
from runledger.llm import LiteLLMGateway
from tests.conftest import api_client
from tests.db.queries import rows, scalar
from tests.fakes.openai_server import FakeProvider
from tests.helpers import Tenant, create_user, eventually, read_events, start_run, wait_for_run
from tests.projects.agent_project import agent_project, executions
from tests.projects.conftest import Fresh, serving

QUESTION = {"input": {"messages": [{"role": "user", "content": "Order A-1001 arrived broken."}]}}


async def _balance(api: httpx.AsyncClient, user: Tenant) -> int:
    me = (await api.get("/api/v1/me", headers=user.headers)).json()
    return int(me["balance_credits"])


async def _run(api: httpx.AsyncClient, user: Tenant, graph: str, within: float = 120) -> dict[str, Any]:
    started = await start_run(api, user, f"langgraph:{graph}", QUESTION)
    assert started.status_code == 202, started.text
    return await wait_for_run(api, user, started.json()["run_id"], within=within)


async def test_react_agent_run_is_billed_once_per_model_call(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway, fake_provider: FakeProvider
) -> None:
    fresh.settings = fresh.settings.model_copy(update={"graphs_config": agent_project(tmp_path / "shop")})
    delivered_before = set(fake_provider.log.ids())
    async with (
        serving(client, fresh, gateway),
        api_client(fresh.settings, fresh.database, client) as api,
    ):
        user = await create_user(api, credits=5_000_000)
        before = await _balance(api, user)
        run = await _run(api, user, "refunds")
        after = await _balance(api, user)
        charges = (await api.get(f"/api/v1/runs/{run['run_id']}/charges", headers=user.headers)).json()
        events = await read_events(api, user, run["run_id"])
    assert run["status"] == "success", run
    receipts = charges["receipts"]
    delivered = set(fake_provider.log.ids()) - delivered_before
    # A tool call, the tool, then the answer: two model calls, two receipts, one per provider call.
    assert run["model_calls"] == 2
    assert len(receipts) == 2
    assert {r["provider_response_id"] for r in receipts} == delivered
    assert before - after == sum(r["charged_credits"] for r in receipts) == run["cost_credits"]
    names = [e.event for e in events]
    assert names.count("usage") == 2
    start = next(e for e in events if e.event == "tool_call_start")
    assert start.data["tool_id"] == "refund_order"
    assert start.data["args"] == {"order_id": "A-1001"}
    assert start.data["effect_key"] == f"{run['run_id']}/{start.data['call_id']}"
    result = next(e for e in events if e.event == "tool_call_result")
    assert result.data["ok"] is True
    assert "text_delta" in names
    flagged = await scalar(
        fresh.database,
        "SELECT count(*) FROM model_calls WHERE run_id = :r AND status = 'flagged'",
        r=run["run_id"],
    )
    assert flagged == 0  # ChatModel's calls are metered, so none is reported as unmetered


async def test_DENY_BY_DEFAULT_TOOLS_a_model_chosen_tool_not_allowed_never_runs(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway
) -> None:
    root = tmp_path / "shop"
    fresh.settings = fresh.settings.model_copy(update={"graphs_config": agent_project(root)})
    async with (
        serving(client, fresh, gateway),
        api_client(fresh.settings, fresh.database, client) as api,
    ):
        user = await create_user(api, credits=5_000_000)
        run = await _run(api, user, "reckless")
        events = await read_events(api, user, run["run_id"])
    assert run["status"] == "success", run  # the model was told, and answered
    assert executions(root) == []  # the tool never ran
    assert "tool_call_start" not in [e.event for e in events]
    (refused,) = [e for e in events if e.event == "tool_call_result"]
    assert refused.data["tool_id"] == "delete_all_orders"
    assert refused.data["error_code"] == "tool_policy_denied"
    messages = run["output"]["messages"]
    tool_message = next(m for m in messages if m["type"] == "tool")
    assert tool_message["status"] == "error"
    assert "tool_policy_denied" in tool_message["content"]
    assert messages[-1]["type"] == "ai"


async def test_EXACTLY_ONCE_TOOL_EFFECTS_write_tool_once_across_a_forced_activity_retry(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway, fake_provider: FakeProvider
) -> None:
    """The model call after the write tool, in the same step, fails, so Temporal retries the
    execution from the step's start: the tool answers from its record and the run succeeds."""
    root = tmp_path / "shop"
    fresh.settings = fresh.settings.model_copy(update={"graphs_config": agent_project(root)})
    fake_provider.log.fail_next = 1
    try:
        async with (
            serving(client, fresh, gateway),
            api_client(fresh.settings, fresh.database, client) as api,
        ):
            user = await create_user(api, credits=5_000_000)
            run = await _run(api, user, "one_step")
            events = await read_events(api, user, run["run_id"])
    finally:
        fake_provider.log.fail_next = 0
    assert run["status"] == "success", run
    runs = executions(root)
    assert [e["tool"] for e in runs] == ["refund_order"]  # exactly once
    effects = await rows(
        fresh.database,
        "SELECT effect_key, tool_id, attempt FROM tool_effects WHERE run_id = :r",
        r=run["run_id"],
    )
    assert [(e["tool_id"], e["attempt"]) for e in effects] == [("refund_order", 1)]
    assert effects[0]["effect_key"] == f"{run['run_id']}/refund:1.tool:0"
    assert runs[0]["key"] == effects[0]["effect_key"]  # the tool was handed its effect key
    results = [e.data for e in events if e.event == "tool_call_result"]
    assert [r.get("replayed", False) for r in results] == [False, True]
    calls = await rows(
        fresh.database,
        "SELECT status, attempt FROM model_calls WHERE run_id = :r ORDER BY created_at",
        r=run["run_id"],
    )
    assert [(c["status"], c["attempt"]) for c in calls] == [("failed", 1), ("settled", 2)]
    receipts = await scalar(
        fresh.database, "SELECT count(*) FROM charge_receipts WHERE run_id = :r", r=run["run_id"]
    )
    assert receipts == 1


async def test_EXACTLY_ONCE_TOOL_EFFECTS_a_tool_node_write_tool_is_recorded_under_the_models_call_id(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway
) -> None:
    """``write_tools`` makes a plain LangChain tool of a ReAct agent a write tool: its result is
    recorded under the model's tool-call id."""
    root = tmp_path / "shop"
    fresh.settings = fresh.settings.model_copy(update={"graphs_config": agent_project(root)})
    async with (
        serving(client, fresh, gateway),
        api_client(fresh.settings, fresh.database, client) as api,
    ):
        user = await create_user(api, credits=5_000_000)
        run = await _run(api, user, "cancels")
    assert run["status"] == "success", run
    call = next(m for m in run["output"]["messages"] if m["type"] == "ai" and m["tool_calls"])
    (tool_call,) = call["tool_calls"]
    effects = await rows(
        fresh.database, "SELECT effect_key, tool_id FROM tool_effects WHERE run_id = :r", r=run["run_id"]
    )
    assert effects == [{"effect_key": f"{run['run_id']}/{tool_call['id']}", "tool_id": "cancel_order"}]
    assert [e["key"] for e in executions(root)] == [effects[0]["effect_key"]]


async def test_EXACTLY_ONCE_TOOL_EFFECTS_write_tool_once_across_kill_9_of_the_worker(
    tmp_path: Path, fresh: Fresh, client: Client, fake_provider: FakeProvider
) -> None:
    """The worker process is SIGKILLed after the write tool ran, while the model call after it (same
    step) is at the provider; a new worker process re-runs the step, and the tool answers from its
    record instead of running again."""
    root = tmp_path / "shop"
    config = agent_project(root)
    env = {
        **os.environ,
        "DATABASE_URL": str(fresh.settings.database_url),
        "TEMPORAL_ADDRESS": str(fresh.settings.temporal_address),
        "TEMPORAL_TASK_QUEUE": fresh.settings.temporal_task_queue,
        "RUNLEDGER_DEFAULT_MODEL": fresh.settings.default_model,
        "RUNLEDGER_MODEL_API_BASE": str(fresh.settings.model_api_base),
        "RUNLEDGER_MODEL_API_KEY": "sk-fake",
        "RUNLEDGER_GRAPHS_CONFIG": str(config),
    }

    async def spawn_worker(name: str) -> asyncio.subprocess.Process:
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115, ASYNC230
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "runledger.cli", "worker", env=env, stdout=log, stderr=log
        )

    log = fake_provider.log
    delivered_before = set(log.ids())
    gate = threading.Event()
    log.gate = gate
    worker = await spawn_worker("worker-1")
    try:
        async with api_client(fresh.settings, fresh.database, client) as api:

            async def published() -> int:
                return int(await scalar(fresh.database, "SELECT count(*) FROM graph_catalog"))

            await eventually(published, until=lambda n: n > 0, within=120, interval=0.5)
            user = await create_user(api, credits=5_000_000)
            started = await start_run(api, user, "langgraph:one_step", QUESTION)
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]

            async def tool_ran_and_call_held() -> tuple[int, int]:
                return len(executions(root)), log.waiting

            # The refund ran (and was recorded); the model call after it, in the same step, is held.
            await eventually(tool_ran_and_call_held, until=lambda s: s == (1, 1), within=120)
            worker.kill()
            await worker.wait()
            gate.set()
            log.gate = None
            worker = await spawn_worker("worker-2")
            run = await wait_for_run(api, user, run_id, within=180)
    finally:
        log.gate = None
        gate.set()
        if worker.returncode is None:
            worker.terminate()
            await worker.wait()
    assert run["status"] == "success", run
    assert [e["tool"] for e in executions(root)] == ["refund_order"]  # exactly once
    effects = await scalar(fresh.database, "SELECT count(*) FROM tool_effects WHERE run_id = :r", r=run_id)
    assert effects == 1
    receipts = await rows(
        fresh.database, "SELECT provider_response_id FROM charge_receipts WHERE run_id = :r", r=run_id
    )
    delivered = set(log.ids()) - delivered_before
    # The call whose answer reached the worker is billed once; the one that died with it is not.
    assert {r["provider_response_id"] for r in receipts} <= delivered
    assert len(receipts) == 1


async def test_NO_UNMETERED_MODEL_CALLS_a_direct_litellm_call_is_flagged(
    tmp_path: Path,
    fresh: Fresh,
    client: Client,
    gateway: LiteLLMGateway,
    fake_provider: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_PROVIDER_URL", fake_provider.url)
    fresh.settings = fresh.settings.model_copy(update={"graphs_config": agent_project(tmp_path / "shop")})
    with structlog.testing.capture_logs() as logged:
        async with (
            serving(client, fresh, gateway),
            api_client(fresh.settings, fresh.database, client) as api,
        ):
            user = await create_user(api, credits=5_000_000)
            run = await _run(api, user, "sneaky")
            events = await read_events(api, user, run["run_id"])
    assert run["status"] == "success", run
    calls = await rows(
        fresh.database, "SELECT call_key, status, model FROM model_calls WHERE run_id = :r", r=run["run_id"]
    )
    assert sorted((c["call_key"], c["status"]) for c in calls) == [
        ("sneak:1.0", "settled"),  # the ChatModel call: metered, billed
        ("unmetered:0", "flagged"),  # the ChatLiteLLM call: flagged, never silently free
    ]
    (flag,) = [e for e in events if e.event == "unmetered_model_call"]
    assert flag.data["call_key"] == "unmetered:0"
    errors = [line for line in logged if line["event"] == "unmetered_model_call"]
    assert errors
    assert errors[0]["log_level"] == "error"
    report = await reconcile_once(fresh.database, threshold_seconds=3600)
    assert report.unmetered_calls == 1
    details = await scalar(
        fresh.database, "SELECT details FROM reconciliation_reports WHERE id = :i", i=report.report_id
    )
    assert [c["call_key"] for c in details["unmetered_calls"]] == ["unmetered:0"]
