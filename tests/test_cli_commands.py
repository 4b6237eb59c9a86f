"""The user-facing CLI commands (``runledger schedules|grants|webhooks|runs``) end to end: the real API app is
served by uvicorn on a loopback port inside the test's event loop (the one the ``database`` and
``client`` fixtures live on), and the CLI runs as a separate process that reaches it over HTTP only.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runledger import demo
from runledger.api_client import (
    DEMO_FILE,
    OVERLAP_POLICIES,
    ClientConfigError,
    resolve_connection,
)
from runledger.contracts.schedules import Overlap
from tests.fakes.loopback import free_port
from tests.helpers import Tenant, create_user, eventually, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")

REPO = Path(__file__).resolve().parents[1]
CLI_TIMEOUT_SECONDS = 60
POET = ("--graph", "langgraph:poet", "--cron", "0 9 * * *", "--timezone", "Europe/Paris")
POET_INPUT = ("--input", '{"topic": "tides"}')
HEAVY_MODULES = ("litellm", "langgraph", "temporalio", "sqlalchemy", "fastapi", "psycopg")


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self
        return json.loads(self.out)


def cli_env(**values: str) -> dict[str, str]:
    """This process's environment without any runledger setting or terminal width, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLEDGER_") and k != "COLUMNS"}
    env.update(values)
    return env


async def run_cli(*args: str, env: dict[str, str]) -> Result:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runledger.cli",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=CLI_TIMEOUT_SECONDS)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@dataclass(frozen=True)
class Cli:
    """The CLI as one user: API URL and key from the environment, an empty data dir."""

    url: str
    user: Tenant
    data_dir: Path

    async def __call__(self, *args: str, **env: str) -> Result:
        values = {
            "RUNLEDGER_API_URL": self.url,
            "RUNLEDGER_API_KEY": self.user.api_key,
            "RUNLEDGER_DATA_DIR": str(self.data_dir),
            **env,
        }
        return await run_cli(*args, env=cli_env(**values))

    async def ok(self, *args: str) -> Result:
        result = await self(*args)
        assert result.code == 0, result
        assert result.err == "", result
        return result


@pytest.fixture
async def cli(api: httpx.AsyncClient, api_url: str, tmp_path: Path) -> Cli:
    return Cli(api_url, await create_user(api, credits=5_000_000), tmp_path)


async def schedule_detail(api: httpx.AsyncClient, user: Tenant, schedule_id: str) -> dict[str, Any]:
    resp = await api.get(f"/api/v1/schedules/{schedule_id}", headers=user.headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_schedule_lifecycle_and_runs_through_the_cli(api: httpx.AsyncClient, cli: Cli) -> None:
    created = (await cli.ok("schedules", "create", *POET, *POET_INPUT, "--json")).json()
    schedule_id, grant_id = created["schedule_id"], created["grant_id"]
    assert created["enabled"] is True
    assert created["next_run_at"]

    table, listed = await asyncio.gather(cli.ok("schedules", "list"), cli.ok("schedules", "list", "--json"))
    assert schedule_id in table.out
    assert "0 9 * * *" in table.out
    assert "Europe/Paris" in table.out
    assert "active" in table.out
    assert [s["schedule_id"] for s in listed.json()["schedules"]] == [schedule_id]

    paused = await cli.ok("schedules", "pause", schedule_id)
    assert f"paused schedule {schedule_id}" in paused.out
    detail = await schedule_detail(api, cli.user, schedule_id)
    assert detail["paused"] is True  # Temporal's own state
    assert detail["enabled"] is False
    assert "paused" in (await cli.ok("schedules", "show", schedule_id)).out

    resumed = (await cli.ok("schedules", "resume", schedule_id, "--json")).json()
    assert resumed["enabled"] is True
    assert (await schedule_detail(api, cli.user, schedule_id))["paused"] is False

    triggered = (await cli.ok("schedules", "trigger", schedule_id, "--json")).json()
    assert triggered == {"schedule_id": schedule_id, "triggered": True}

    async def schedule_runs() -> list[dict[str, Any]]:
        resp = await api.get("/api/v1/runs", params={"schedule_id": schedule_id}, headers=cli.user.headers)
        found: list[dict[str, Any]] = resp.json()["runs"]
        return found

    (run,) = await eventually(schedule_runs, until=lambda found: len(found) == 1, within=30)
    finished = await wait_for_run(api, cli.user, run["run_id"])
    assert finished["status"] == "success", finished

    runs_table, runs_json, other_schedule = await asyncio.gather(
        cli.ok("runs", "list", "--schedule", schedule_id),
        cli.ok("runs", "list", "--schedule", schedule_id, "--status", "success", "--limit", "5", "--json"),
        cli.ok("runs", "list", "--schedule", str(uuid.uuid4()), "--json"),
    )
    assert run["run_id"] in runs_table.out
    assert "system_scheduled" in runs_table.out
    assert [r["run_id"] for r in runs_json.json()["runs"]] == [run["run_id"]]
    assert other_schedule.json() == {"runs": [], "next_cursor": None}

    shown, shown_json, schedule_shown = await asyncio.gather(
        cli.ok("runs", "show", run["run_id"]),
        cli.ok("runs", "show", run["run_id"], "--json"),
        cli.ok("schedules", "show", schedule_id),
    )
    body = shown_json.json()
    assert body["run"]["run_id"] == run["run_id"]
    assert len(body["charges"]) == 1
    assert body["run"]["cost_credits"] == body["charges"][0]["charged_credits"] > 0
    assert "success" in shown.out
    assert "charges" in shown.out
    assert "gpt-4o-mini" in shown.out
    assert f"{body['charges'][0]['charged_credits']:,}" in shown.out
    assert run["run_id"] in schedule_shown.out  # recent runs
    assert "Europe/Paris" in schedule_shown.out  # next run times, in the schedule's zone too

    grants_table = await cli.ok("grants", "list")
    grant_line = next(line for line in grants_table.out.splitlines() if grant_id in line)
    assert schedule_id in grant_line
    assert "active" in grant_line
    assert "graph:execute:langgraph:poet" in grant_line

    deleted = await cli.ok("schedules", "delete", schedule_id, "--json")
    assert deleted.json() == {"schedule_id": schedule_id, "deleted": True}
    resp = await api.get(f"/api/v1/schedules/{schedule_id}", headers=cli.user.headers)
    assert resp.status_code == 404
    (grant,) = (await cli.ok("grants", "list", "--json")).json()["grants"]
    assert grant["grant_id"] == grant_id
    assert grant["revoked_at"] is not None  # the schedule's own grant went with it
    assert "no schedules" in (await cli.ok("schedules", "list")).out


async def test_grants_create_list_revoke_and_a_schedule_on_a_given_grant(
    api: httpx.AsyncClient, cli: Cli
) -> None:
    scope = "graph:execute:langgraph:poet"
    grant = (
        await cli.ok(
            "grants",
            "create",
            "--scope",
            scope,
            "--max-credits",
            "100000",
            "--expires-at",
            "2999-01-01T00:00:00Z",
            "--json",
        )
    ).json()
    grant_id = grant["grant_id"]
    assert grant["scopes"] == [scope]
    assert grant["max_credits"] == 100_000

    schedule = (
        await cli.ok(
            "schedules",
            "create",
            *POET,
            *POET_INPUT,
            "--grant",
            grant_id,
            "--overlap",
            "buffer_one",
            "--catchup-window-seconds",
            "600",
            "--disabled",
            "--json",
        )
    ).json()
    schedule_id = schedule["schedule_id"]
    assert schedule["grant_id"] == grant_id
    assert schedule["enabled"] is False
    assert schedule["overlap"] == "buffer_one"
    assert schedule["catchup_window_seconds"] == 600
    assert (await schedule_detail(api, cli.user, schedule_id))["paused"] is True

    updated = (await cli.ok("schedules", "update", schedule_id, "--cron", "30 7 * * 1", "--json")).json()
    assert updated["cron"] == "30 7 * * 1"

    table = await cli.ok("grants", "list")
    line = next(line for line in table.out.splitlines() if grant_id in line)
    assert "active" in line
    assert schedule_id in line
    assert "100,000" in line

    revoked = await cli.ok("grants", "revoke", grant_id)
    assert f"revoked grant {grant_id}" in revoked.out
    (listed,) = (await cli.ok("grants", "list", "--json")).json()["grants"]
    assert listed["revoked_at"] is not None
    assert "revoked" in (await cli.ok("grants", "list")).out

    await cli.ok("schedules", "delete", schedule_id)


async def test_webhook_trigger_lifecycle_through_the_cli(api: httpx.AsyncClient, cli: Cli) -> None:
    source = f"cli-{uuid.uuid4().hex[:8]}"  # sources are global names: one per test
    created = (
        await cli.ok(
            "webhooks",
            "create",
            "--source",
            source,
            "--graph",
            "langgraph:poet",
            "--map",
            "topic=/issue/title",
            "--json",
        )
    ).json()
    trigger_id, secret = created["trigger_id"], created["secret"]
    assert created["source"] == source
    assert created["input_mapping"] == {"topic": "/issue/title"}
    assert created["url"] == f"/api/v1/webhooks/{source}"
    assert secret.startswith("whsec_")

    table, listed = await asyncio.gather(cli.ok("webhooks", "list"), cli.ok("webhooks", "list", "--json"))
    (trigger,) = listed.json()["webhook_triggers"]
    assert trigger == {k: v for k, v in created.items() if k != "secret"}  # the secret is shown once
    line = next(line for line in table.out.splitlines() if trigger_id in line)
    assert source in line
    assert "topic=/issue/title" in line
    assert created["grant_id"] in line
    assert f" /api/v1/webhooks/{source} " in line
    assert f"URLs are on the API at {cli.url};" in table.out
    assert secret not in table.out

    payload = json.dumps({"action": "opened", "issue": {"title": "tides"}})
    delivery_id = f"cli-test-{uuid.uuid4()}"
    # A sender has no API key: the secret from the environment, and no key anywhere.
    first = await cli(
        "webhooks",
        "send",
        source,
        "--data",
        payload,
        "--delivery-id",
        delivery_id,
        "--json",
        RUNLEDGER_WEBHOOK_SECRET=secret,
        RUNLEDGER_API_KEY="",
    )
    sent = first.json()
    (started,) = sent["runs"]
    run_id = started["run_id"]
    assert sent["delivery_id"] == delivery_id
    assert (started["trigger_id"], started["created"]) == (trigger_id, True)
    run = await wait_for_run(api, cli.user, run_id)
    assert run["status"] == "success", run
    assert run["input"] == {"topic": "tides"}
    assert (run["run_kind"], run["trigger_ref"]) == ("system_webhook", delivery_id)

    payload_file = cli.data_dir / "payload.json"
    payload_file.write_text(payload)
    again_json, again_table, wrong_secret = await asyncio.gather(
        cli.ok(
            "webhooks",
            "send",
            source,
            "--secret",
            secret,
            "--data",
            payload,
            "--delivery-id",
            delivery_id,
            "--json",
        ),
        cli.ok(
            "webhooks",
            "send",
            source,
            "--secret",
            secret,
            "--data",
            f"@{payload_file}",
            "--delivery-id",
            delivery_id,
        ),
        cli("webhooks", "send", source, "--secret", "whsec_not-the-secret", "--data", payload),
    )
    assert again_json.json() == {
        "delivery_id": delivery_id,
        "event": None,
        "runs": [{"trigger_id": trigger_id, "run_id": run_id, "status": "success", "created": False}],
        "filtered_trigger_ids": [],
    }
    assert "was received before" in again_table.out
    assert run_id in again_table.out
    assert "no (re-delivery)" in again_table.out
    assert wrong_secret.code == 1, wrong_secret
    assert wrong_secret.err.startswith("error: invalid_signature: "), wrong_secret
    assert wrong_secret.out == "", wrong_secret

    fresh = (await cli.ok("webhooks", "send", source, "--secret", secret, "--data", payload, "--json")).json()
    assert fresh["delivery_id"].startswith("cli-")
    (fresh_run,) = fresh["runs"]
    assert fresh_run["created"] is True
    assert fresh_run["run_id"] != run_id
    assert (await wait_for_run(api, cli.user, fresh_run["run_id"]))["status"] == "success"

    # The audit log: newest first, the refused one (no trigger verified it) among them.
    audit_json, audit_table = await asyncio.gather(
        cli.ok("webhooks", "deliveries", "--source", source, "--json"),
        cli.ok("webhooks", "deliveries", "--source", source),
    )
    rows = audit_json.json()["webhook_deliveries"]
    assert sorted(r["outcome"] for r in rows) == [
        "accepted",
        "accepted",
        "duplicate",
        "duplicate",
        "invalid_signature",
    ]
    assert rows[0]["run_ids"] == [fresh_run["run_id"]]
    assert "invalid_signature" in audit_table.out
    assert fresh_run["run_id"] in audit_table.out
    assert secret not in audit_json.out + audit_table.out

    deleted = await cli.ok("webhooks", "delete", trigger_id, "--json")
    assert deleted.json() == {"trigger_id": trigger_id, "deleted": True}
    listed_after, table_after, gone = await asyncio.gather(
        cli.ok("webhooks", "list", "--json"),
        cli.ok("webhooks", "list"),
        cli("webhooks", "send", source, "--secret", secret, "--data", payload),
    )
    assert listed_after.json() == {"webhook_triggers": []}
    assert "no webhook triggers" in table_after.out
    assert gone.code == 1, gone
    assert gone.err.startswith("error: invalid_signature: "), gone  # as if the source never existed


async def test_run_steps_and_replays_through_the_cli(api: httpx.AsyncClient, cli: Cli) -> None:
    started = await api.post(
        "/api/v1/graphs/langgraph:brief/runs", json={"input": {"topic": "tides"}}, headers=cli.user.headers
    )
    run = await wait_for_run(api, cli.user, started.json()["run_id"], within=60)
    steps = (await cli.ok("runs", "steps", run["run_id"], "--json")).json()["checkpoints"]
    assert [s["node"] for s in steps] == ["outline", "draft", "review"]
    table = (await cli.ok("runs", "steps", run["run_id"])).out
    assert "outline" in table
    assert steps[0]["checkpoint_id"] in table
    last = steps[-1]["checkpoint_id"]
    dry = (await cli.ok("runs", "replay", run["run_id"], "--from", last, "--dry-run", "--json")).json()
    assert dry == {"estimated_credits": 0, "reused_calls": 3}
    printed = (
        await cli.ok("runs", "replay", run["run_id"], "--from", steps[1]["checkpoint_id"], "--dry-run")
    ).out
    assert "nothing (dry run)" in printed
    fork = (
        await cli.ok("runs", "replay", run["run_id"], "--from", steps[1]["checkpoint_id"], "--json")
    ).json()
    done = await wait_for_run(api, cli.user, fork["run_id"], within=60)
    assert (done["replay_of"], done["model_calls"]) == (run["run_id"], 1)
    # A finished run waits for nothing: resume, approve and deny say so.
    for args in (
        ("resume", run["run_id"], "--value", '"yes"'),
        ("approve", run["run_id"]),
        ("deny", run["run_id"]),
    ):
        refused = await cli("runs", *args)
        assert refused.code == 1, refused
        assert refused.err.startswith("error: run_not_paused: "), refused
    not_json = await cli("runs", "resume", run["run_id"], "--value", "{oops")
    assert not_json.code == 2
    assert "not JSON" in not_json.err


async def test_errors_print_the_api_code_and_exit_1(cli: Cli, tmp_path: Path) -> None:
    bad_cron, bad_timezone, wrong_key, unknown, bad_run, refused, no_key = await asyncio.gather(
        cli(
            "schedules",
            "create",
            "--graph",
            "langgraph:poet",
            "--cron",
            "61 * * * *",
            "--timezone",
            "UTC",
            *POET_INPUT,
        ),
        cli(
            "schedules",
            "create",
            "--graph",
            "langgraph:poet",
            "--cron",
            "0 9 * * *",
            "--timezone",
            "Mars/Olympus",
            *POET_INPUT,
            "--json",
        ),
        cli("schedules", "list", RUNLEDGER_API_KEY="rl_not_a_key"),
        cli("schedules", "pause", str(uuid.uuid4())),
        cli("runs", "show", str(uuid.uuid4())),
        cli("grants", "list", RUNLEDGER_API_URL=f"http://127.0.0.1:{free_port()}"),
        cli("runs", "list", RUNLEDGER_API_KEY="", RUNLEDGER_DATA_DIR=str(tmp_path / "empty")),
    )
    for result, code in (
        (bad_cron, "invalid_cron"),
        (bad_timezone, "invalid_timezone"),
        (wrong_key, "unauthorized"),
        (unknown, "schedule_not_found"),
        (bad_run, "run_not_found"),
    ):
        assert result.code == 1, result
        assert result.err.startswith(f"error: {code}: "), result
        assert result.out == "", result
    assert refused.code == 1, refused
    assert "is `runledger up` running?" in refused.err
    assert "Traceback" not in refused.err
    assert no_key.code == 2, no_key
    assert "no API key" in no_key.err


async def test_default_url_and_the_demo_users_key(cli: Cli, api_url: str, tmp_path: Path) -> None:
    """No URL and no key given: the port setting and the key ``runledger up`` saved in demo.json."""
    data_dir = tmp_path / "stack"
    data_dir.mkdir()
    (data_dir / DEMO_FILE).write_text(json.dumps({"user_id": cli.user.user_id, "api_key": cli.user.api_key}))
    port = api_url.rsplit(":", 1)[1]
    result = await run_cli(
        "runs", "list", "--json", env=cli_env(RUNLEDGER_DATA_DIR=str(data_dir), RUNLEDGER_API_PORT=port)
    )
    assert result.json() == {"runs": [], "next_cursor": None}


async def test_api_commands_import_no_heavy_module(cli: Cli) -> None:
    script = (
        "import json, sys\n"
        "from runledger.cli import main\n"
        "try:\n"
        "    main(['grants', 'list'])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_MODULES!r})\n"
        "sys.stderr.write(json.dumps({'code': code, 'heavy': heavy}))\n"
    )
    env = cli_env(RUNLEDGER_API_URL=cli.url, RUNLEDGER_API_KEY=cli.user.api_key)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=CLI_TIMEOUT_SECONDS)
    assert json.loads(err) == {"code": 0, "heavy": []}, (out, err)
    assert "no grants" in out.decode()


def test_connection_settings_precedence(tmp_path: Path) -> None:
    (tmp_path / DEMO_FILE).write_text(json.dumps({"api_key": "from-demo"}))
    env = {"RUNLEDGER_DATA_DIR": str(tmp_path), "RUNLEDGER_API_PORT": "9001"}
    assert resolve_connection(None, None, env).api_url == "http://127.0.0.1:9001"
    assert resolve_connection(None, None, env).api_key == "from-demo"
    env |= {"RUNLEDGER_API_URL": "http://api.example:8080/", "RUNLEDGER_API_KEY": "from-env"}
    assert resolve_connection(None, None, env).api_url == "http://api.example:8080"
    assert resolve_connection(None, None, env).api_key == "from-env"
    flags = resolve_connection("https://flag.example", "from-flag", env)
    assert (flags.api_url, flags.api_key) == ("https://flag.example", "from-flag")
    assert resolve_connection(None, "k", {}).api_url == "http://127.0.0.1:8000"
    with pytest.raises(ClientConfigError, match="no API key"):
        resolve_connection(None, None, {"RUNLEDGER_DATA_DIR": str(tmp_path / "nothing")})
    with pytest.raises(ClientConfigError, match="http"):
        resolve_connection("127.0.0.1:8000", "k", {})


def test_cli_constants_match_the_contracts() -> None:
    """The CLI keeps copies so it need not import temporalio or the database layer."""
    assert tuple(o.value for o in Overlap) == OVERLAP_POLICIES
    assert demo.DEMO_FILE == DEMO_FILE


async def test_connections_through_the_cli_never_print_a_secret(cli: Cli) -> None:
    token = f"ghp_cli_{uuid.uuid4().hex}"
    body = cli.data_dir / "connection.json"
    body.write_text(json.dumps({"provider": "github", "kind": "api_key", "api_key": token, "name": "ci bot"}))
    created = (await cli.ok("connections", "create", "--data", f"@{body}", "--json")).json()
    assert (created["provider"], created["kind"], created["status"]) == ("github", "api_key", "active")
    table, listed = await asyncio.gather(
        cli.ok("connections", "list"), cli.ok("connections", "list", "--json")
    )
    assert [c["connection_id"] for c in listed.json()["connections"]] == [created["connection_id"]]
    assert created["connection_id"] in table.out
    assert "ci bot" in table.out
    for out in (table.out, listed.out, json.dumps(created)):
        assert token not in out
    revoked = await cli.ok("connections", "delete", created["connection_id"], "--json")
    assert revoked.json() == {"connection_id": created["connection_id"], "revoked": True}
    assert (await cli.ok("connections", "list", "--json")).json() == {"connections": []}
