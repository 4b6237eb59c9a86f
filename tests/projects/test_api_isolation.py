"""The API process never imports graph code (SPEC §7): the real ``runledger api`` serves a project's
graph — listed, started, run to ``success`` by a worker that loaded the project — and when it exits,
its ``sys.modules`` holds no module of the project, nothing of LangGraph or LangChain, and not the
loader. The modules are written by an ``atexit`` hook of the process itself, after it served."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from runledger.llm import LiteLLMGateway
from tests.fakes.loopback import free_port
from tests.helpers import ADMIN, ADMIN_TOKEN, TERMINAL
from tests.projects.conftest import Fresh, serving
from tests.projects.helpers import echo_project

READY_SECONDS = 90.0

#: ``runledger api`` exactly as the console script runs it, plus a hook that records the modules.
API_PROCESS = """
import atexit, json, os, sys

def record():
    with open(os.environ["MODULES_OUT"], "w") as out:
        json.dump({name: getattr(m, "__file__", None) for name, m in list(sys.modules.items()) if m}, out)

atexit.register(record)
from runledger.cli import main
main(["api"])
"""


def _env(fresh: Fresh, config: Path, port: int, out: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNLEDGER_", "LANGFUSE_", "TEMPORAL_"))}
    env.update(
        DATABASE_URL=fresh.settings.require_database_url(),
        TEMPORAL_ADDRESS=fresh.settings.require_temporal_address(),
        TEMPORAL_TASK_QUEUE=fresh.settings.temporal_task_queue,
        RUNLEDGER_ADMIN_TOKEN=ADMIN_TOKEN,
        RUNLEDGER_API_PORT=str(port),
        # Must match the worker's (README: settings that must match): the preflight prices it.
        RUNLEDGER_DEFAULT_MODEL=fresh.settings.default_model,
        # Set, as in a deployment's shared environment: the API must still not load it.
        RUNLEDGER_GRAPHS_CONFIG=str(config),
        RUNLEDGER_LOG_LEVEL="warning",
        MODULES_OUT=str(out),
    )
    return env


async def _ready(http: httpx.AsyncClient, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        assert process.returncode is None, "runledger api exited before it was ready"
        try:
            if (await http.get("/readyz")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"runledger api not ready after {READY_SECONDS}s"
        await asyncio.sleep(0.2)


async def _served_run(http: httpx.AsyncClient) -> dict[str, Any]:
    user = (await http.post("/api/v1/admin/users", json={"name": "iso"}, headers=ADMIN)).json()
    headers = {"Authorization": f"Bearer {user['api_key']}"}
    graphs = {g["graph_id"]: g for g in (await http.get("/api/v1/graphs", headers=headers)).json()}
    assert "langgraph:echo" in graphs
    started = await http.post(
        "/api/v1/graphs/langgraph:echo/runs", json={"input": {"text": "hi"}}, headers=headers
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    deadline = time.monotonic() + 60
    while True:
        run: dict[str, Any] = (await http.get(f"/api/v1/runs/{run_id}", headers=headers)).json()
        if run["status"] in TERMINAL:
            return run
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.1)


async def test_the_api_process_never_imports_graph_code(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway
) -> None:
    root = tmp_path / "proj"
    config = echo_project(root, max_model_calls=0)
    fresh.settings = fresh.settings.model_copy(update={"graphs_config": config})
    out = tmp_path / "modules.json"
    port = free_port()
    async with serving(client, fresh, gateway):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            API_PROCESS,
            cwd=tmp_path,
            env=_env(fresh, config, port, out),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                await _ready(http, process)
                run = await _served_run(http)
            assert run["status"] == "success", run
            assert run["output"]["reply"] == "hello HI!"
            # Ctrl-C: uvicorn shuts down, then re-raises the signal, so Python unwinds and runs atexit.
            process.send_signal(signal.SIGINT)
            _, stderr = await asyncio.wait_for(process.communicate(), 30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert out.exists(), stderr.decode(errors="replace")
    modules: dict[str, str | None] = json.loads(out.read_text())
    assert "api.app" in modules  # the record is the API's, made after it served
    assert "runledger.cli" in modules
    assert _graph_code(modules, root) == []
    for name in ("graph", "tools", "config", "utils"):
        assert name not in modules, name


def _graph_code(modules: dict[str, str | None], project: Path) -> list[str]:
    """Modules of the project (by file), of LangGraph / LangChain / LiteLLM, or of our graph side."""
    root = project.resolve()
    return [
        name
        for name, file in modules.items()
        if (file and Path(file).resolve().is_relative_to(root))
        or name.split(".")[0] in ("langgraph", "langchain_core", "langchain", "litellm")
        or name.startswith(("runledger.projects", "runledger.graphs", "runledger.llm", "runledger.tools"))
    ]
