"""The API fuzzed against its own OpenAPI document (issue 12 item 10): Schemathesis (``st run``) with
every check — server errors, status-code, content-type, header and response-schema conformance,
positive and negative data, missing headers, ignored auth, unsupported methods and ``Allow`` — over
the real API served by uvicorn on real Postgres and Temporal. Once with a user's key over the user
routes, once with the admin token over the admin routes; a fixed seed and bounded examples, so a run
takes well under a minute and finds the same cases every time. It must find nothing."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import ADMIN_TOKEN, Tenant, create_user, eventually, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")

SEED = 20261202
MAX_EXAMPLES = 8
TIMEOUT_SECONDS = 300
ADMIN_PATHS = r"^/api/v1/(admin/|billing/reconciliation)"
#: Operations whose acceptance depends on what no schema can say: an opaque cursor this API issued,
#: a graph input checked against the catalog's schema (a start's, a replay's; and the boundary's
#: limits on free-form JSON: BIGINT integers, no NUL, bounded depth), a cron's meaning, a scope
#: naming a graph, the value an approval is resumed with, a connection's URLs. For them a
#: schema-valid request may be refused with 422 (documented, in the envelope); every other check
#: (server errors, conformance of each status, content type, headers and body) still applies.
SEMANTIC_422 = (
    r"^/api/v1/(runs|billing/ledger|billing/receipts|runs/\{run_id\}/(charges|replay|resume)|grants|schedules|webhook-deliveries|connections"
    r"|schedules/\{schedule_id\}|webhook-triggers|graphs/\{graph_id\}/(runs|chat))$|^/v1/chat/completions$"
)


def config(parameters: dict[str, str]) -> str:
    """A Schemathesis config: real ids of this tenant, so id-bearing routes are reached past 404."""
    lines = ["[parameters]", *(f'"{k}" = "{v}"' for k, v in parameters.items()), ""]
    lines += [
        "[[operations]]",
        f"include-path-regex = '{SEMANTIC_422}'",
        'checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]',
    ]
    return "\n".join(lines) + "\n"


async def schemathesis(
    url: str, token: str, *filters: str, workdir: Path, parameters: dict[str, str]
) -> tuple[int, str]:
    st = Path(sys.executable).with_name("st")
    (workdir / "schemathesis.toml").write_text(config(parameters))
    proc = await asyncio.create_subprocess_exec(
        str(st),
        "--config-file",
        str(workdir / "schemathesis.toml"),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--no-shrink",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--header",
        f"Authorization: Bearer {token}",
        "--no-color",
        *filters,
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=TIMEOUT_SECONDS)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def test_schemathesis_with_a_user_key_finds_nothing(
    api: httpx.AsyncClient, api_url: str, tmp_path: Path
) -> None:
    user = await create_user(api, credits=50_000_000)
    run = (await start_run(api, user)).json()["run_id"]
    await wait_for_run(api, user, run)
    grant = (
        await api.post("/api/v1/grants", json={"scopes": ["graph:execute:*"]}, headers=user.headers)
    ).json()
    schedule = (
        await api.post(
            "/api/v1/schedules",
            json={
                "graph_id": "langgraph:poet",
                "input": {"topic": "x"},
                "cron": "0 9 * * *",
                "timezone": "UTC",
            },
            headers=user.headers,
        )
    ).json()
    source = f"fuzz-{run[:8]}"
    trigger = (
        await api.post(
            "/api/v1/webhook-triggers",
            json={"source": source, "graph_id": "langgraph:poet", "input": {"topic": "x"}},
            headers=user.headers,
        )
    ).json()
    parameters = {
        "path.run_id": run,
        "path.grant_id": grant["grant_id"],
        "path.schedule_id": schedule["schedule_id"],
        "path.trigger_id": trigger["trigger_id"],
        "path.source": source,
    }
    try:
        code, out = await schemathesis(
            api_url,
            user.api_key,
            "--exclude-path-regex",
            ADMIN_PATHS,
            workdir=tmp_path,
            parameters=parameters,
        )
    finally:
        await _leave_nothing_running(api, user)
    assert code == 0, out


async def _leave_nothing_running(api: httpx.AsyncClient, user: Tenant) -> None:
    """The fuzzer may have created schedules (a cron of every minute) and started runs: stop them, so
    the rest of the session's tests share the worker and the fake provider with nothing of it."""
    for schedule in (await api.get("/api/v1/schedules", headers=user.headers)).json()["schedules"]:
        await api.delete(f"/api/v1/schedules/{schedule['schedule_id']}", headers=user.headers)

    async def unfinished() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for status in ("pending", "running", "paused"):
            page = await api.get(
                "/api/v1/runs", params={"status": status, "limit": 100}, headers=user.headers
            )
            found += page.json()["runs"]
        return found

    for run in await unfinished():
        await api.post(f"/api/v1/runs/{run['run_id']}/cancel", headers=user.headers)
    await eventually(unfinished, until=lambda runs: not runs, within=120, interval=0.5)


async def test_schemathesis_with_the_admin_token_finds_nothing(
    api: httpx.AsyncClient, api_url: str, tmp_path: Path
) -> None:
    user = await create_user(api)
    parameters = {"path.billing_account_id": user.billing_account_id, "path.user_id": user.user_id}
    code, out = await schemathesis(
        api_url, ADMIN_TOKEN, "--include-path-regex", ADMIN_PATHS, workdir=tmp_path, parameters=parameters
    )
    assert code == 0, out
