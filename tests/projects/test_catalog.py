"""A project in a temp dir, served through RUNLEDGER_GRAPHS_CONFIG on real Postgres and Temporal: the
worker publishes a versioned catalog, the API reads it only from there (listing, 404, 422 against the
published schema with nothing recorded), runs end ``success`` and record the version they executed."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError
from temporalio.client import Client

from runledger.config import Settings
from runledger.llm import LiteLLMGateway
from runledger.projects import load_registry
from runledger.worker import publish_catalog
from tests.conftest import api_client
from tests.db.queries import count_runs, rows, scalar
from tests.helpers import create_user, start_run, wait_for_run
from tests.projects.conftest import Fresh, serving
from tests.projects.helpers import ECHO_FILES, ECHO_SCHEMA, write_files, write_project

THREADED = '''
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict


    class State(TypedDict, total=False):
        text: str
        reply: str


    def make_graph(config):
        """A factory: LangGraph Platform calls it per run, with the run's config."""
        thread = config["configurable"].get("thread_id", "none")

        def respond(state: State) -> State:
            return {"reply": f"thread {thread}"}

        builder = StateGraph(State)
        builder.add_node("respond", respond)
        builder.add_edge(START, "respond")
        builder.add_edge("respond", END)
        return builder.compile()
'''


def _project(root: Path) -> Path:
    return write_project(
        root,
        {**ECHO_FILES, "threaded.py": THREADED},
        {
            "dependencies": ["."],
            "graphs": {"echo": "./graph.py:graph", "threaded": {"path": "./threaded.py:make_graph"}},
            "runledger": {
                "graphs": {
                    "echo": {
                        "description": "Shouts back.",
                        "max_model_calls": 0,
                        "input_schema": ECHO_SCHEMA,
                    },
                    "threaded": {"description": "Says which thread it runs on."},
                }
            },
        },
    )


def _through_the_setting(fresh: Fresh, config: Path, monkeypatch: pytest.MonkeyPatch) -> Fresh:
    monkeypatch.setenv("RUNLEDGER_GRAPHS_CONFIG", str(config))
    configured = Settings().graphs_config
    assert configured == config
    return dataclasses.replace(
        fresh, settings=fresh.settings.model_copy(update={"graphs_config": configured})
    )


def _forget(root: Path) -> None:
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None) or ""
        if file and Path(file).resolve().is_relative_to(root.resolve()):
            del sys.modules[name]


async def test_a_project_graph_runs_end_to_end_and_records_its_version(
    tmp_path: Path,
    fresh: Fresh,
    client: Client,
    gateway: LiteLLMGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _project(tmp_path / "proj")
    fresh = _through_the_setting(fresh, config, monkeypatch)
    async with (
        serving(client, fresh, gateway) as registry,
        api_client(fresh.settings, fresh.database, client) as api,
    ):
        echo = registry.get("langgraph:echo")
        assert echo is not None
        user = await create_user(api, credits=5_000_000)

        listed = {g["graph_id"]: g for g in (await api.get("/api/v1/graphs", headers=user.headers)).json()}
        assert listed["langgraph:echo"]["version"] == echo.spec.version
        assert listed["langgraph:echo"]["source"] == str(config.resolve())
        assert listed["langgraph:echo"]["description"] == "Shouts back."
        assert listed["langgraph:echo"]["input_schema"] == ECHO_SCHEMA
        assert listed["langgraph:echo"]["tool_ids"] == []
        assert listed["langgraph:echo"]["max_model_calls"] == 0
        assert listed["langgraph:threaded"]["max_model_calls"] == 10  # the documented default
        assert listed["langgraph:poet"]["source"] == "builtin"

        # Input is validated against the published schema: 422 with the schema's error, nothing recorded.
        bad = await start_run(api, user, "langgraph:echo", {"input": {"text": ""}})
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"]["code"] == "validation_error"
        assert "input.text: '' should be non-empty" in bad.json()["error"]["message"]
        unknown = await start_run(api, user, "langgraph:nope", {"input": {}})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "graph_not_found"
        assert await count_runs(fresh.database, user.billing_account_id) == 0
        me = (await api.get("/api/v1/me", headers=user.headers)).json()
        assert me["reserved_credits"] == 0

        started = await start_run(api, user, "langgraph:echo", {"input": {"text": "hi"}})
        assert started.status_code == 202, started.text
        run = await wait_for_run(api, user, started.json()["run_id"], within=60)
        assert run["status"] == "success", run
        assert run["graph_version"] == echo.spec.version
        # The final state, JSON-safe: the AIMessage is its dict.
        assert run["output"]["text"] == "hi"
        assert run["output"]["reply"] == "hello HI!"
        (message,) = run["output"]["messages"]
        assert (message["type"], message["content"]) == ("ai", "hello HI!")
        assert run["model_calls"] == run["cost_credits"] == 0

        threaded = await start_run(api, user, "langgraph:threaded", {"input": {"text": "x"}})
        assert threaded.status_code == 202, threaded.text
        done = await wait_for_run(api, user, threaded.json()["run_id"], within=60)
        assert done["status"] == "success", done
        assert done["output"]["reply"] == f"thread {done['run_id']}"  # the factory got the run's config

    (version_row,) = await rows(
        fresh.database, "SELECT * FROM graph_versions WHERE graph_id = 'langgraph:echo'"
    )
    assert version_row["version"] == echo.spec.version
    assert version_row["source"] == str(config.resolve())
    assert version_row["max_model_calls"] == 0


async def test_versions_are_kept_the_catalog_follows_the_last_worker(
    tmp_path: Path,
    fresh: Fresh,
    client: Client,
    gateway: LiteLLMGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "proj"
    config = _project(root)
    fresh = _through_the_setting(fresh, config, monkeypatch)
    async with (
        serving(client, fresh, gateway) as first,
        api_client(fresh.settings, fresh.database, client) as api,
    ):
        user = await create_user(api, credits=5_000_000)
        v1 = first.graphs["langgraph:echo"].spec.version
        old = await wait_for_run(
            api,
            user,
            (await start_run(api, user, "langgraph:echo", {"input": {"text": "a"}})).json()["run_id"],
        )
        assert (old["status"], old["graph_version"]) == ("success", v1)

        # A new deploy: the source changed, a worker starts and publishes the new version.
        write_files(root, {"tools.py": ECHO_FILES["tools.py"].replace('"!"', '"!!"')})
        _forget(root)
        second = load_registry(config)
        v2 = second.graphs["langgraph:echo"].spec.version
        assert v2 != v1
        assert (
            second.graphs["langgraph:threaded"].spec.version
            != first.graphs["langgraph:threaded"].spec.version
        )
        await publish_catalog(fresh.database, second, fresh.settings.default_model)
        listed = {g["graph_id"]: g for g in (await api.get("/api/v1/graphs", headers=user.headers)).json()}
        assert listed["langgraph:echo"]["version"] == v2
        # Publishing the same again changes nothing.
        await publish_catalog(fresh.database, second, fresh.settings.default_model)
        assert (
            await scalar(
                fresh.database, "SELECT count(*) FROM graph_versions WHERE graph_id = 'langgraph:echo'"
            )
            == 2
        )

        # A worker without the project: its graphs leave the catalog, their versions stay.
        await publish_catalog(fresh.database, load_registry(), fresh.settings.default_model)
        listed = {g["graph_id"]: g for g in (await api.get("/api/v1/graphs", headers=user.headers)).json()}
        assert "langgraph:echo" not in listed
        assert "langgraph:poet" in listed
        gone = await start_run(api, user, "langgraph:echo", {"input": {"text": "a"}})
        assert gone.status_code == 404
        assert (await api.get(f"/api/v1/runs/{old['run_id']}", headers=user.headers)).json()[
            "graph_version"
        ] == v1
    versions = await rows(
        fresh.database,
        "SELECT version FROM graph_versions WHERE graph_id = 'langgraph:echo' ORDER BY first_published_at",
    )
    assert [r["version"] for r in versions] == [v1, v2]
    # What a run executed is never rewritten.
    with pytest.raises(DBAPIError, match="append-only"):
        await scalar(
            fresh.database,
            "UPDATE graph_versions SET description = 'edited' WHERE version = :v RETURNING 1",
            v=v1,
        )


async def test_every_api_route_that_names_a_graph_reads_the_published_catalog(
    fresh: Fresh, client: Client
) -> None:
    """Before any worker published, the API knows no graph at all — not even the built-in ones."""
    async with api_client(fresh.settings, fresh.database, client) as api:
        user = await create_user(api, credits=1_000_000)
        assert (await api.get("/api/v1/graphs", headers=user.headers)).json() == []
        assert (await start_run(api, user, "langgraph:poet")).status_code == 404
        schedule = await api.post(
            "/api/v1/schedules",
            json={
                "graph_id": "langgraph:poet",
                "input": {"topic": "x"},
                "cron": "0 * * * *",
                "timezone": "UTC",
            },
            headers=user.headers,
        )
        assert schedule.status_code == 404, schedule.text
        hook = await api.post(
            "/api/v1/webhook-triggers",
            json={"source": "gh", "graph_id": "langgraph:poet"},
            headers=user.headers,
        )
        assert hook.status_code == 404, hook.text
        chat = await api.post(
            "/v1/chat/completions",
            json={"model": "runledger/chat", "messages": [{"role": "user", "content": "hi"}]},
            headers=user.headers,
        )
        assert chat.status_code == 404, chat.text
        models = (await api.get("/v1/models", headers=user.headers)).json()
        assert models["data"] == []

        await publish_catalog(fresh.database, load_registry(), fresh.settings.default_model)
        assert {m["id"] for m in (await api.get("/v1/models", headers=user.headers)).json()["data"]} >= {
            "langgraph:chat",
            "runledger/chat",
        }
        bad = await api.post(
            "/api/v1/schedules",
            json={
                "graph_id": "langgraph:poet",
                "input": {"topic": ""},
                "cron": "0 * * * *",
                "timezone": "UTC",
            },
            headers=user.headers,
        )
        assert bad.status_code == 422, bad.text
