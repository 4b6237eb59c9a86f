"""Connections named by a graph's settings and by a run's start, on real Postgres and Temporal, against
the local fake GitHub API: precedence run start > grant > graph settings, and a connection is only
ever used by runs of the account that owns it (a graph setting naming one tenant's connection never
lends it to another tenant's runs: their tool call fails ``connection_missing``). A run's start naming
a connection that is not the caller's own is refused 422 and records nothing."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from runledger.llm import LiteLLMGateway
from runledger.projects import ProjectError
from runledger.projects.settings import parse_project
from tests.conftest import api_client
from tests.db.queries import rows, scalar
from tests.fakes.github_server import FakeGitHub
from tests.helpers import Tenant, create_user, wait_for_run
from tests.projects.conftest import Fresh, serving
from tests.projects.helpers import write_project
from tests.projects.test_connections import COMMENTER, GRAPH, Stack, issue_opened


@dataclasses.dataclass
class Mapped:
    api: httpx.AsyncClient
    fresh: Fresh
    owner: Tenant
    stranger: Tenant
    #: The owner's connection, named by the graph's settings, and its token.
    connection_id: str
    token: str


def project(root: Path, connections: dict[str, str]) -> Path:
    return write_project(
        root,
        {"commenter.py": COMMENTER},
        {
            "dependencies": ["."],
            "graphs": {"commenter": "./commenter.py:graph"},
            "runledger": {
                "graphs": {
                    "commenter": {
                        "max_model_calls": 0,
                        "tools": ["github__create_issue_comment"],
                        "connections": connections,
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


async def api_key_connection(api: httpx.AsyncClient, user: Tenant, github: FakeGitHub) -> tuple[str, str]:
    key, _ = github.log.issue_pair()
    resp = await api.post(
        "/api/v1/connections",
        json={"provider": "github", "kind": "api_key", "api_key": key, "api_base": github.url},
        headers=user.headers,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["connection_id"], key


@pytest.fixture
async def mapped(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway, github: FakeGitHub
) -> AsyncIterator[Mapped]:
    # The connection exists before the worker loads the project whose settings name it.
    async with api_client(fresh.settings, fresh.database, client) as api:
        owner = await create_user(api, credits=5_000_000, name="owner")
        stranger = await create_user(api, credits=5_000_000, name="stranger")
        connection_id, token = await api_key_connection(api, owner, github)
    config = project(tmp_path / "proj", {"github": connection_id})
    own = dataclasses.replace(fresh, settings=fresh.settings.model_copy(update={"graphs_config": config}))
    async with serving(client, own, gateway), api_client(own.settings, own.database, client) as api:
        yield Mapped(api, own, owner, stranger, connection_id, token)


async def comment_run(m: Mapped, user: Tenant, number: int, **body: Any) -> dict[str, Any]:
    resp = await m.api.post(
        f"/api/v1/graphs/{GRAPH}/runs", json={"input": {"number": number}, **body}, headers=user.headers
    )
    assert resp.status_code == 202, resp.text
    run = await wait_for_run(m.api, user, resp.json()["run_id"], within=60)
    assert run["status"] == "success", run
    result: dict[str, Any] = run["output"]["result"]
    return result


def tokens_on(github: FakeGitHub, number: int) -> list[str]:
    return [c["token"] for c in github.log.comments if c["number"] == number]


async def test_a_graph_settings_connection_serves_its_owners_runs_and_never_another_tenants(
    mapped: Mapped, github: FakeGitHub
) -> None:
    number = 1000 + uuid.uuid4().int % 1000
    result = await comment_run(mapped, mapped.owner, number)
    assert result["ok"] is True, result
    assert tokens_on(github, number) == [mapped.token]

    # The same graph, another account: the setting names a connection that is not theirs.
    result = await comment_run(mapped, mapped.stranger, number + 1)
    assert (result["ok"], result["error_code"]) == (False, "connection_missing"), result
    assert "not a live connection of this run's account" in result["message"]
    assert tokens_on(github, number + 1) == []

    # Their own connection, named at the start, is used (the run's start comes first).
    theirs, their_token = await api_key_connection(mapped.api, mapped.stranger, github)
    result = await comment_run(mapped, mapped.stranger, number + 2, connections={"github": theirs})
    assert result["ok"] is True, result
    assert tokens_on(github, number + 2) == [their_token]
    # The run carries the id only (NO_SECRETS_IN_HISTORY).
    stored = await rows(
        mapped.fresh.database,
        "SELECT connections::text AS c FROM graph_runs WHERE billing_account_id = :a AND connections IS NOT NULL",
        a=mapped.stranger.billing_account_id,
    )
    assert [json.loads(r["c"]) for r in stored] == [{"github": theirs}]
    assert their_token not in json.dumps(stored)


async def test_precedence_is_run_start_then_grant_then_graph_settings(
    mapped: Mapped, github: FakeGitHub
) -> None:
    by_grant, grant_token = await api_key_connection(mapped.api, mapped.owner, github)
    by_start, start_token = await api_key_connection(mapped.api, mapped.owner, github)
    number = 2000 + uuid.uuid4().int % 1000
    # A webhook run under a grant mapping github: the grant's connection, not the graph's.
    stack = Stack(mapped.api, mapped.fresh, mapped.owner)
    run = await issue_opened(stack, {"github": by_grant}, number=number)
    assert run["output"]["result"]["ok"] is True, run["output"]
    assert tokens_on(github, number) == [grant_token]
    # A grant that maps nothing for github falls through to the graph's settings.
    run = await issue_opened(stack, {}, number=number + 1)
    assert run["output"]["result"]["ok"] is True, run["output"]
    assert tokens_on(github, number + 1) == [mapped.token]
    # The run's start beats the graph's settings.
    result = await comment_run(mapped, mapped.owner, number + 2, connections={"github": by_start})
    assert result["ok"] is True, result
    assert tokens_on(github, number + 2) == [start_token]


async def test_a_run_start_naming_a_connection_not_the_callers_own_is_422_and_writes_nothing(
    mapped: Mapped, github: FakeGitHub
) -> None:
    revoked, _ = await api_key_connection(mapped.api, mapped.stranger, github)
    assert (
        await mapped.api.delete(f"/api/v1/connections/{revoked}", headers=mapped.stranger.headers)
    ).status_code == 204
    for connections in (
        {"github": mapped.connection_id},  # another tenant's
        {"github": revoked},  # revoked
        {"slack": (await api_key_connection(mapped.api, mapped.stranger, github))[0]},  # other provider
        {"github": "not-a-uuid"},
        {"github": str(uuid.uuid4())},  # no such connection
    ):
        resp = await mapped.api.post(
            f"/api/v1/graphs/{GRAPH}/runs",
            json={"input": {"number": 1}, "connections": connections},
            headers={**mapped.stranger.headers, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert resp.status_code == 422, (connections, resp.text)
        assert resp.json()["error"]["code"] == "connection_not_found", resp.json()
    bad_provider = await mapped.api.post(
        f"/api/v1/graphs/{GRAPH}/runs",
        json={"input": {"number": 1}, "connections": {"Git Hub": mapped.connection_id}},
        headers=mapped.stranger.headers,
    )
    assert bad_provider.status_code == 422, bad_provider.text
    count = "SELECT count(*) FROM {} WHERE billing_account_id = :a"
    for table in ("graph_runs", "run_start_requests", "credit_reservations"):
        assert (
            await scalar(mapped.fresh.database, count.format(table), a=mapped.stranger.billing_account_id)
            == 0
        )


def test_graph_settings_connections_are_validated_at_load(tmp_path: Path) -> None:
    for connections, problem in (
        ({"github": "not-a-uuid"}, "runledger.graphs.commenter.connections.github"),
        ({"Git Hub": str(uuid.uuid4())}, "runledger.graphs.commenter.connections"),
        ({"github": 7}, "runledger.graphs.commenter.connections.github"),
    ):
        raw = {
            "graphs": {"commenter": "./commenter.py:graph"},
            "runledger": {"graphs": {"commenter": {"connections": connections}}},
        }
        with pytest.raises(ProjectError) as refused:
            parse_project(tmp_path / "langgraph.json", raw)
        assert problem in str(refused.value), (connections, str(refused.value))
    ok = parse_project(
        tmp_path / "langgraph.json",
        {
            "graphs": {"commenter": "./commenter.py:graph"},
            "runledger": {"graphs": {"commenter": {"connections": {"github": str(uuid.uuid4())}}}},
        },
    )
    assert set(ok.graphs[0].settings.connections) == {"github"}
