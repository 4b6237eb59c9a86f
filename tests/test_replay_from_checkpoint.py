"""Replay from any step at a known cost, on real Postgres and Temporal: ``GET /runs/{id}/checkpoints``
lists a run's steps with the cost so far; ``POST /runs/{id}/replay`` with ``from_checkpoint_id``
starts a new run at that step's state — the steps before it are copied, not run or paid again —
and ``dry_run`` answers the estimate with the preflight's pricing and starts nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from db.session import Database
from runledger.config import Settings
from tests.db.queries import count_runs, rows
from tests.fakes.openai_server import FakeProvider
from tests.helpers import Tenant, read_events, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")


async def _balance(api: httpx.AsyncClient, user: Tenant) -> int:
    me: dict[str, Any] = (await api.get("/api/v1/me", headers=user.headers)).json()
    return int(me["balance_credits"])


async def _replay(api: httpx.AsyncClient, user: Tenant, run_id: str, body: dict[str, Any]) -> httpx.Response:
    return await api.post(f"/api/v1/runs/{run_id}/replay", json=body, headers=user.headers)


async def test_a_fork_from_a_step_pays_only_for_the_steps_after_it(
    api: httpx.AsyncClient, user: Tenant, database: Database, settings: Settings, fake_provider: FakeProvider
) -> None:
    started = await start_run(api, user, "langgraph:brief", {"input": {"topic": "tides"}})
    original = await wait_for_run(api, user, started.json()["run_id"], within=60)
    assert original["status"] == "success", original
    listed = await api.get(f"/api/v1/runs/{original['run_id']}/checkpoints", headers=user.headers)
    assert listed.status_code == 200, listed.text
    steps = listed.json()["checkpoints"]
    assert [s["node"] for s in steps] == ["outline", "draft", "review"]
    assert steps[-1]["cost_credits_so_far"] == original["cost_credits"]
    after_outline = steps[0]

    # Dry runs: the estimate, nothing started.
    runs_before = await count_runs(database, user.billing_account_id)
    dry = await _replay(
        api, user, original["run_id"], {"from_checkpoint_id": after_outline["checkpoint_id"], "dry_run": True}
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["reused_calls"] == 1
    last = await _replay(
        api, user, original["run_id"], {"from_checkpoint_id": steps[-1]["checkpoint_id"], "dry_run": True}
    )
    assert last.json() == {"estimated_credits": 0, "reused_calls": 3}
    over = await _replay(api, user, original["run_id"], {"dry_run": True})
    # Starting over costs what the run-start preflight held for the original (same pricing); the
    # fork after the outline is priced for the two calls still to come.
    assert over.json() == {
        "estimated_credits": original["reservation"]["reserved_credits"],
        "reused_calls": 0,
    }
    assert dry.json()["estimated_credits"] * 3 == over.json()["estimated_credits"] * 2 > 0
    assert await count_runs(database, user.billing_account_id) == runs_before

    # The fork from after the outline runs draft and review only, and pays for those two calls.
    balance_before, calls_before = await _balance(api, user), fake_provider.log.count()
    forked = await _replay(
        api, user, original["run_id"], {"from_checkpoint_id": after_outline["checkpoint_id"]}
    )
    assert forked.status_code == 202, forked.text
    fork = await wait_for_run(api, user, forked.json()["run_id"], within=60)
    assert fork["status"] == "success", fork
    assert fork["replay_of"] == original["run_id"]
    assert fork["run_kind"] == "replay"
    assert fake_provider.log.count() - calls_before == 2
    receipts = await rows(
        database, "SELECT charged_credits FROM charge_receipts WHERE run_id = :r", r=fork["run_id"]
    )
    assert len(receipts) == 2 == fork["model_calls"]
    assert balance_before - await _balance(api, user) == sum(r["charged_credits"] for r in receipts)
    events = await read_events(api, user, fork["run_id"])
    assert [e.data["nodes"] for e in events if e.event == "step"] == [["draft"], ["review"]]
    # The outline is the original's, carried over in the copied state.
    assert fork["output"]["outline"] == original["output"]["outline"]
    # The original never changes.
    again = (await api.get(f"/api/v1/runs/{original['run_id']}", headers=user.headers)).json()
    assert (again["cost_credits"], again["model_calls"], again["output"]) == (
        original["cost_credits"],
        original["model_calls"],
        original["output"],
    )


async def test_a_replay_names_a_checkpoint_of_its_original(
    api: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    started = await start_run(api, user, "langgraph:poet", {"input": {"topic": "moss"}})
    original = await wait_for_run(api, user, started.json()["run_id"], within=60)
    runs_before = await count_runs(database, user.billing_account_id)
    unknown = await _replay(api, user, original["run_id"], {"from_checkpoint_id": "1f0-not-a-step"})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "checkpoint_not_found"
    (step,) = (await api.get(f"/api/v1/runs/{original['run_id']}/checkpoints", headers=user.headers)).json()[
        "checkpoints"
    ]
    both = await _replay(
        api, user, original["run_id"], {"from_checkpoint_id": step["checkpoint_id"], "input": {"topic": "x"}}
    )
    assert both.status_code == 422
    extra = await _replay(api, user, original["run_id"], {"from": "somewhere"})
    assert extra.status_code == 422
    assert await count_runs(database, user.billing_account_id) == runs_before
    # Over again with a new input (validated against the published schema).
    bad_input = await _replay(api, user, original["run_id"], {"input": {"topic": 5}})
    assert bad_input.status_code == 422
    new_input = await _replay(api, user, original["run_id"], {"input": {"topic": "fern"}})
    assert new_input.status_code == 202, new_input.text
    done = await wait_for_run(api, user, new_input.json()["run_id"], within=60)
    assert done["input"] == {"topic": "fern"}
    assert done["status"] == "success"
