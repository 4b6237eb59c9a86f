"""The example project (``examples/support_agent``) loads with the same loader a user's project does,
and runs end to end: a ReAct agent over ``runledger.sdk.ChatModel``, billed once per model call.

``runledger.sdk`` is the metered chat model of issue 10's other half; until it is on this branch there
is nothing to load, so the module is skipped (the loader itself is proven by the other tests here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from temporalio.client import Client

from runledger.llm import LiteLLMGateway
from runledger.projects import load_registry
from tests.conftest import api_client
from tests.helpers import create_user, read_events, start_run, wait_for_run
from tests.projects.conftest import Fresh, serving

pytest.importorskip("runledger.sdk", reason="runledger.sdk (the metered ChatModel) is not on this branch yet")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support_agent"


def _copy(tmp_path: Path) -> Path:
    """A copy in the test's temp dir, so its tools/config/agent modules are forgotten afterwards."""
    target = tmp_path / "support_agent"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target / "langgraph.json"


def test_the_example_project_loads_with_its_settings(tmp_path: Path) -> None:
    config = _copy(tmp_path)
    agent = load_registry(config).get("langgraph:support_agent")
    assert agent is not None
    assert agent.spec.tool_ids == ("lookup_order", "refund_order")
    assert agent.spec.write_tools == ("refund_order",)
    assert agent.spec.max_model_calls == 4
    assert agent.spec.source == str(config.resolve())


async def test_the_example_agent_runs_billed_once_per_model_call(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway
) -> None:
    fresh.settings = fresh.settings.model_copy(update={"graphs_config": _copy(tmp_path)})
    async with (
        serving(client, fresh, gateway) as registry,
        api_client(fresh.settings, fresh.database, client) as api,
    ):
        user = await create_user(api, credits=5_000_000)
        started = await start_run(
            api,
            user,
            "langgraph:support_agent",
            {"input": {"messages": [{"role": "user", "content": "Order A-1001 arrived broken."}]}},
        )
        assert started.status_code == 202, started.text
        run = await wait_for_run(api, user, started.json()["run_id"], within=90)
        assert run["status"] == "success", run
        assert run["graph_version"] == registry.graphs["langgraph:support_agent"].spec.version
        receipts = (await api.get(f"/api/v1/runs/{run['run_id']}/charges", headers=user.headers)).json()
        assert run["model_calls"] >= 1
        assert len(receipts["receipts"]) == run["model_calls"]
        events = await read_events(api, user, run["run_id"])
        assert "tool_call_start" in [e.event for e in events]
