"""Connections end to end on real Postgres and Temporal: a GitHub issue event (signed as GitHub signs)
starts a project graph whose tool ``github__create_issue_comment`` comments back through the
``github`` connection its grant maps — against a local fake GitHub API and OAuth token endpoint.

OAuth2 tokens are refreshed by the worker with authlib when expired or answered 401, and stored
encrypted; a failed refresh marks the connection ``needs_reauth`` and fails the call
``connection_needs_reauth``. NO_SECRETS_IN_HISTORY: no token or client secret is in the Temporal
history, the run's events or any table."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from db.secrets import SecretBox
from runledger.llm import LiteLLMGateway
from tests.conftest import api_client
from tests.db.queries import rows
from tests.fakes.github_server import CLIENT_ID, CLIENT_SECRET, FakeGitHub
from tests.helpers import SECRET_KEYS, Tenant, create_user, wait_for_run
from tests.projects.conftest import Fresh, serving
from tests.projects.helpers import write_project

GRAPH = "langgraph:commenter"
HOOK_SECRET = "github-hook-secret-for-connections"

COMMENTER = """
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    from runledger import tools


    class State(TypedDict, total=False):
        number: int
        result: dict


    async def comment(state: State) -> State:
        args = {"owner": "acme", "repo": "app", "issue_number": state["number"], "body": "Thanks!"}
        r = await tools.call("github__create_issue_comment", args)
        code = None if r.error_code is None else str(r.error_code)
        return {"result": {"ok": r.ok, "error_code": code, "value": r.value, "message": r.message}}


    builder = StateGraph(State)
    builder.add_node("comment", comment)
    builder.add_edge(START, "comment")
    builder.add_edge("comment", END)
    graph = builder.compile()
"""


@dataclasses.dataclass
class Stack:
    api: httpx.AsyncClient
    fresh: Fresh
    user: Tenant


@pytest.fixture
async def stack(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway
) -> AsyncIterator[Stack]:
    config = write_project(
        tmp_path / "proj",
        {"commenter.py": COMMENTER},
        {
            "dependencies": ["."],
            "graphs": {"commenter": "./commenter.py:graph"},
            "runledger": {
                "graphs": {
                    "commenter": {
                        "max_model_calls": 0,
                        # Not in write_tools: a catalog tool with external effects is one anyway.
                        "tools": ["github__create_issue_comment"],
                        "input_schema": {
                            "type": "object",
                            "properties": {"number": {"type": "integer"}},
                            "required": ["number"],
                        },
                    }
                }
            },
        },
    )
    own = dataclasses.replace(fresh, settings=fresh.settings.model_copy(update={"graphs_config": config}))
    async with serving(client, own, gateway), api_client(own.settings, own.database, client) as api:
        yield Stack(api, own, await create_user(api, credits=5_000_000))


async def connect(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    resp = await stack.api.post("/api/v1/connections", json=body, headers=stack.user.headers)
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


def oauth2(
    github: FakeGitHub, access: str, refresh: str | None, expires_at: datetime | None
) -> dict[str, Any]:
    return {
        "provider": "github",
        "kind": "oauth2",
        "api_base": github.url,
        "oauth2": {
            "access_token": access,
            "refresh_token": refresh,
            "expires_at": None if expires_at is None else expires_at.isoformat(),
            "token_url": github.token_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    }


async def issue_opened(stack: Stack, connections: dict[str, str], number: int) -> dict[str, Any]:
    """A grant mapping the connections, a github trigger under it, and an issue event it receives."""
    headers = stack.user.headers
    grant = await stack.api.post(
        "/api/v1/grants",
        json={"scopes": [f"graph:execute:{GRAPH}"], "connections": connections},
        headers=headers,
    )
    assert grant.status_code == 201, grant.text
    assert grant.json()["connections"] == connections
    source = f"gh-{uuid.uuid4().hex[:8]}"
    trigger = await stack.api.post(
        "/api/v1/webhook-triggers",
        json={
            "source": source,
            "graph_id": GRAPH,
            "kind": "github",
            "secret": HOOK_SECRET,
            "grant_id": grant.json()["grant_id"],
            "input_mapping": {"number": "/issue/number"},
        },
        headers=headers,
    )
    assert trigger.status_code == 201, trigger.text
    body = json.dumps({"action": "opened", "issue": {"number": number, "title": "broken"}}).encode()
    digest = hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    resp = await stack.api.post(
        f"/api/v1/webhooks/{source}",
        content=body,
        headers={
            "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": f"sha256={digest}",
        },
    )
    assert resp.status_code == 202, resp.text
    run = await wait_for_run(stack.api, stack.user, resp.json()["runs"][0]["run_id"], within=60)
    assert run["status"] == "success", run
    return run


async def connection_row(stack: Stack, connection_id: str) -> dict[str, Any]:
    found = await rows(stack.fresh.database, "SELECT * FROM connections WHERE id = :id", id=connection_id)
    return found[0]


async def test_NO_SECRETS_IN_HISTORY_an_expired_oauth2_token_is_refreshed_and_the_comment_posted(
    stack: Stack, github: FakeGitHub, client: Client
) -> None:
    access, refresh = github.log.issue_pair()
    github.log.access_tokens.discard(access)  # expired at GitHub too
    conn = await connect(stack, oauth2(github, access, refresh, datetime.now(UTC) - timedelta(minutes=5)))
    assert conn["status"] == "active"
    listed = await stack.api.get("/api/v1/connections", headers=stack.user.headers)
    assert [c["connection_id"] for c in listed.json()["connections"]] == [conn["connection_id"]]
    for secret in (access, refresh, CLIENT_SECRET):
        assert secret not in listed.text

    run = await issue_opened(stack, {"github": conn["connection_id"]}, number=42)
    result = run["output"]["result"]
    assert result["ok"] is True, result
    assert result["value"]["html_url"].endswith("/acme/app/issues/42#c" + str(result["value"]["comment_id"]))
    posted = [c for c in github.log.comments if c["number"] == 42]
    assert len(posted) == 1
    # EXACTLY_ONCE_TOOL_EFFECTS: the comment is recorded under its effect key before the graph goes on.
    (effect,) = await rows(
        stack.fresh.database,
        "SELECT tool_id, effect_key FROM tool_effects WHERE run_id = :r",
        r=run["run_id"],
    )
    assert effect["tool_id"] == "github__create_issue_comment"
    assert effect["effect_key"].startswith(f"{run['run_id']}/")
    new_token = posted[0]["token"]
    assert new_token != access

    row = await connection_row(stack, conn["connection_id"])
    assert row["status"] == "active"
    stored = json.loads(SecretBox.from_setting(SECRET_KEYS).decrypt(row["credentials_encrypted"]))
    assert stored["access_token"] == new_token  # the refreshed tokens, stored encrypted
    assert stored["refresh_token"] != refresh
    assert datetime.fromisoformat(row["settings"]["expires_at"]) > datetime.now(UTC)

    tokens = [access, refresh, new_token, stored["refresh_token"], CLIENT_SECRET]
    history = (await client.get_workflow_handle(run["workflow_id"]).fetch_history()).to_json()
    assert run["run_id"] in history
    events = await rows(stack.fresh.database, "SELECT * FROM run_events WHERE run_id = :r", r=run["run_id"])
    assert any(e["event"] == "tool_call_result" for e in events)
    dumps = {"history": history, "events": json.dumps(events, default=str)}
    for table in ("connections", "execution_grants", "graph_runs", "webhook_triggers", "webhook_deliveries"):
        dumps[table] = json.dumps(await rows(stack.fresh.database, f"SELECT * FROM {table}"), default=str)
    leaks = [(where, t[:8]) for where, text in dumps.items() for t in tokens if t in text]
    assert leaks == []


async def test_a_401_refreshes_once_an_api_key_works_and_a_failed_refresh_needs_reauth(
    stack: Stack, github: FakeGitHub
) -> None:
    # Not expired by its clock, but revoked at GitHub: the 401 makes the worker refresh.
    access, refresh = github.log.issue_pair()
    github.log.access_tokens.discard(access)
    rejected = await connect(stack, oauth2(github, access, refresh, None))
    run = await issue_opened(stack, {"github": rejected["connection_id"]}, number=7)
    assert run["output"]["result"]["ok"] is True, run["output"]

    key, _ = github.log.issue_pair()
    api_key = await connect(
        stack, {"provider": "github", "kind": "api_key", "api_key": key, "api_base": github.url}
    )
    run = await issue_opened(stack, {"github": api_key["connection_id"]}, number=8)
    assert run["output"]["result"]["ok"] is True, run["output"]
    assert [c["token"] for c in github.log.comments if c["number"] == 8] == [key]

    dead_access, _ = github.log.issue_pair()
    github.log.access_tokens.discard(dead_access)
    dead = await connect(stack, oauth2(github, dead_access, "ghr_never-issued", None))
    run = await issue_opened(stack, {"github": dead["connection_id"]}, number=9)
    result = run["output"]["result"]
    assert (result["ok"], result["error_code"]) == (False, "connection_needs_reauth"), result
    assert (await connection_row(stack, dead["connection_id"]))["status"] == "needs_reauth"
    listed = {
        c["connection_id"]: c
        for c in (await stack.api.get("/api/v1/connections", headers=stack.user.headers)).json()[
            "connections"
        ]
    }
    assert listed[dead["connection_id"]]["status"] == "needs_reauth"
    assert not [c for c in github.log.comments if c["number"] == 9]

    # No connection mapped: the tool is refused, the run still ends.
    run = await issue_opened(stack, {}, number=10)
    assert run["output"]["result"]["error_code"] == "connection_missing", run["output"]


async def test_connections_are_owner_only_write_only_and_revocable(stack: Stack, github: FakeGitHub) -> None:
    other = await create_user(stack.api, name="other")
    mine = await connect(stack, {"provider": "github", "kind": "api_key", "api_key": "ghp_mine_0123456789"})
    assert set(mine) >= {"connection_id", "provider", "kind", "status", "created_at"}
    assert "ghp_mine_0123456789" not in json.dumps(mine)

    for bad in (
        {"provider": "GitHub", "kind": "api_key", "api_key": "x"},
        {"provider": "github", "kind": "api_key"},
        {"provider": "github", "kind": "oauth2", "api_key": "x"},
        {"provider": "github", "kind": "basic", "api_key": "x"},
        {"provider": "github", "kind": "api_key", "api_key": "x", "api_base": "ftp://x"},
    ):
        resp = await stack.api.post("/api/v1/connections", json=bad, headers=stack.user.headers)
        assert resp.status_code == 422, (bad, resp.text)

    theirs = await stack.api.get("/api/v1/connections", headers=other.headers)
    assert theirs.json() == {"connections": []}
    grant = await stack.api.post(
        "/api/v1/grants",
        json={"scopes": [f"graph:execute:{GRAPH}"], "connections": {"github": mine["connection_id"]}},
        headers=other.headers,
    )
    assert grant.status_code == 404, grant.text
    assert grant.json()["error"]["code"] == "connection_not_found"
    gone = await stack.api.delete(f"/api/v1/connections/{mine['connection_id']}", headers=other.headers)
    assert gone.status_code == 404

    deleted = await stack.api.delete(
        f"/api/v1/connections/{mine['connection_id']}", headers=stack.user.headers
    )
    assert deleted.status_code == 204
    assert (await stack.api.get("/api/v1/connections", headers=stack.user.headers)).json() == {
        "connections": []
    }
    again = await stack.api.delete(f"/api/v1/connections/{mine['connection_id']}", headers=stack.user.headers)
    assert again.status_code == 404
    stored = await connection_row(stack, mine["connection_id"])
    assert stored["status"] == "revoked"
    assert "ghp_mine_0123456789" not in json.dumps(stored, default=str)
