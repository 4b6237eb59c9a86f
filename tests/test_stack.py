"""End-to-end test of the dev stack (SPEC §1 ``runledger up``), run as a user runs it: a subprocess with
its own data dir and free ports, no DATABASE_URL or TEMPORAL_ADDRESS (so Postgres and the Temporal dev
server are embedded), LiteLLM offline and no Langfuse.

It starts a billed poet run through the printed demo key, stops the stack with SIGINT (exit 0, no
process left behind), then starts it again on the same data dir and finds the same user, run and
Temporal history.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(sys.platform == "win32", reason="the dev stack needs POSIX signals and sockets"),
]

REPO = Path(__file__).resolve().parents[1]
READY_DEADLINE = 90.0
STOP_DEADLINE = 60.0
BANNER_END = "Press Ctrl-C to stop."
TERMINAL = {"success", "error", "cancelled", "skipped"}
T = TypeVar("T")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return True
    return state != "Z"  # a zombie has exited; only its parent has not reaped it yet


def _pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (Linux /proc; empty elsewhere)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid = int(entry.name)
        if text in cmdline and pid != os.getpid() and _alive(pid):
            found.append(pid)
    return found


def _eventually(probe: Callable[[], T], until: Callable[[T], bool], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        time.sleep(0.1)


@dataclass
class Ports:
    api: int
    temporal: int
    ui: int


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    out_path: Path
    data_dir: Path
    pids: dict[str, int]
    output: str = ""

    def read_output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=STOP_DEADLINE)
        self.output = self.read_output()
        return code


def _env(data_dir: Path, ports: Ports) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LANGFUSE_", "RUNLEDGER_", "TEMPORAL_")) and key != "DATABASE_URL"
    }
    env.update(
        RUNLEDGER_DATA_DIR=str(data_dir),
        RUNLEDGER_API_PORT=str(ports.api),
        RUNLEDGER_TEMPORAL_PORT=str(ports.temporal),
        RUNLEDGER_TEMPORAL_UI_PORT=str(ports.ui),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_OFFLINE_MODE="true",
        PYTHONUNBUFFERED="1",
    )
    return env


def _logs(data_dir: Path) -> str:
    parts = []
    for log in sorted((data_dir / "logs").glob("*.log")):
        parts.append(f"--- {log.name} ---\n{log.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)


@contextmanager
def _stack(data_dir: Path, ports: Ports, out_path: Path, *args: str) -> Iterator[RunningStack]:
    """Start ``runledger up`` and wait for its banner; on the way out, make sure nothing survives."""
    with out_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "runledger.cli", "up", *args],
            cwd=REPO,
            env=_env(data_dir, ports),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    stack = RunningStack(process, out_path, data_dir, pids={})
    try:
        deadline = time.monotonic() + READY_DEADLINE
        while BANNER_END not in (output := stack.read_output()):
            if process.poll() is not None:
                pytest.fail(f"runledger up exited with {process.returncode}:\n{output}\n{_logs(data_dir)}")
            if time.monotonic() > deadline:
                pytest.fail(f"runledger up not ready after {READY_DEADLINE}s:\n{output}\n{_logs(data_dir)}")
            time.sleep(0.2)
        stack.output = output
        recorded = json.loads((data_dir / "stack.json").read_text())["pids"]
        stack.pids = {name: int(pid) for name, pid in recorded.items() if pid is not None}
        yield stack
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in [*stack.pids.values(), *_pids_mentioning(str(data_dir))]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _assert_nothing_left(stack: RunningStack) -> None:
    survivors = {name: pid for name, pid in stack.pids.items() if _alive(pid)}
    assert not survivors, f"processes left behind: {survivors}\n{stack.output}"
    assert not _pids_mentioning(str(stack.data_dir)), "a process still uses the data dir"
    assert not (stack.data_dir / "pg" / "postmaster.pid").exists(), "Postgres did not shut down cleanly"
    assert not (stack.data_dir / "stack.json").exists()


def _temporal_workflow_ids(ui_port: int) -> list[str]:
    resp = httpx.get(
        f"http://127.0.0.1:{ui_port}/api/v1/namespaces/default/workflows",
        params={"query": "GraphId='langgraph:poet'"},
        timeout=10,
    )
    if resp.status_code != 200:
        return []
    return [execution["execution"]["workflowId"] for execution in resp.json().get("executions") or []]


#: A graph project with no model call, whose own module is named ``tools`` (SPEC §7).
ECHO_PROJECT = {
    "tools.py": "def shout(text):\n    return text.upper()\n",
    "agent.py": (
        "from typing_extensions import TypedDict\n"
        "from langgraph.graph import END, START, StateGraph\n"
        "from tools import shout\n\n"
        "class State(TypedDict, total=False):\n    text: str\n    reply: str\n\n"
        "builder = StateGraph(State)\n"
        "builder.add_node('respond', lambda state: {'reply': shout(state['text'])})\n"
        "builder.add_edge(START, 'respond')\nbuilder.add_edge('respond', END)\n"
        "graph = builder.compile()\n"
    ),
    "langgraph.json": json.dumps(
        {
            "dependencies": ["."],
            "graphs": {"echo": "./agent.py:graph"},
            "runledger": {"graphs": {"echo": {"max_model_calls": 0}}},
        }
    ),
}


def test_up_serves_a_billed_run_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = Ports(*_free_ports(3))
    api = f"http://127.0.0.1:{ports.api}"
    project = tmp_path / "project"
    project.mkdir()
    for name, text in ECHO_PROJECT.items():
        (project / name).write_text(text)
    graphs = project / "langgraph.json"

    with _stack(data_dir, ports, tmp_path / "up-1.out", "--graphs", str(graphs)) as first:
        demo = json.loads((data_dir / "demo.json").read_text())
        admin_token = (data_dir / "admin_token").read_text().strip()
        for secret in ("demo.json", "admin_token", "secret_keys", "notify_signing_key"):
            assert stat.S_IMODE((data_dir / secret).stat().st_mode) == 0o600
        for printed in (
            f"{api}/docs",
            f"{api}/ui  (sign in with the demo API key",
            f"http://127.0.0.1:{ports.ui}",
            admin_token,
            demo["api_key"],
            f"curl -s -X POST {api}/api/v1/graphs/langgraph:poet/runs",
            "GraphId='langgraph:poet'",
            str(data_dir / "logs"),
            f"built-in, and the project {graphs}",
        ):
            assert printed in first.output, printed
        assert set(first.pids) >= {"up", "postgres", "temporal", "worker", "api"}

        with httpx.Client(
            base_url=api, headers={"Authorization": f"Bearer {demo['api_key']}"}, timeout=10
        ) as http:
            resp = http.post(
                "/api/v1/graphs/langgraph:poet/runs",
                json={"input": {"topic": "the sea"}},
                headers={"Idempotency-Key": "demo-1"},
            )
            assert resp.status_code == 202, resp.text
            run_id = resp.json()["run_id"]

            def get_run() -> dict[str, Any]:
                body: dict[str, Any] = http.get(f"/api/v1/runs/{run_id}").json()
                return body

            run = _eventually(get_run, lambda r: r.get("status") in TERMINAL)
            assert run["status"] == "success", run
            charges = http.get(f"/api/v1/runs/{run_id}/charges")
            assert charges.status_code == 200, charges.text
            assert len(charges.json()["receipts"]) == 1

            # --graphs: the project's graph is published beside the built-in ones and runs.
            listed = {g["graph_id"]: g for g in http.get("/api/v1/graphs").json()}
            assert listed["langgraph:echo"]["source"] == str(graphs.resolve())
            assert listed["langgraph:poet"]["source"] == "builtin"
            echo = http.post("/api/v1/graphs/langgraph:echo/runs", json={"input": {"text": "hi"}})
            assert echo.status_code == 202, echo.text
            echo_run = _eventually(
                lambda: http.get(f"/api/v1/runs/{echo.json()['run_id']}").json(),
                lambda r: r.get("status") in TERMINAL,
            )
            assert echo_run["status"] == "success", (echo_run, _logs(data_dir))
            assert echo_run["output"]["reply"] == "HI"
            assert echo_run["graph_version"] == listed["langgraph:echo"]["version"]

        # The banner's dashboard: sign in with the demo key and see the run on its detail page.
        with httpx.Client(base_url=api, timeout=10) as browser:
            form = browser.get("/ui/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token, form.text
            detail = browser.post(
                "/ui/login",
                data={"api_key": demo["api_key"], "csrf_token": token.group(1), "next": f"/ui/runs/{run_id}"},
                follow_redirects=True,
            )
            assert detail.status_code == 200, detail.text
            assert f"<code>{run_id}</code>" in detail.text
            assert 'id="run-status">success<' in detail.text

        assert httpx.get(f"http://127.0.0.1:{ports.ui}/", timeout=10).status_code == 200
        assert first.stop() == 0, first.output
    _assert_nothing_left(first)

    with _stack(data_dir, ports, tmp_path / "up-2.out") as second:
        assert json.loads((data_dir / "demo.json").read_text()) == demo
        assert demo["api_key"] in second.output
        assert admin_token in second.output
        with httpx.Client(
            base_url=api, headers={"Authorization": f"Bearer {demo['api_key']}"}, timeout=10
        ) as http:
            again = http.get(f"/api/v1/runs/{run_id}")
            assert again.status_code == 200, again.text
            assert again.json()["status"] == "success"
            assert again.json()["output"] == run["output"]
            # Same key, same body: the same run, from Postgres's permanent idempotency record.
            replayed = http.post(
                "/api/v1/graphs/langgraph:poet/runs",
                json={"input": {"topic": "the sea"}},
                headers={"Idempotency-Key": "demo-1"},
            )
            assert replayed.status_code == 200, replayed.text
            assert replayed.json()["run_id"] == run_id
        # Temporal's history survived the restart too, and is found by business key.
        ids = _eventually(lambda: _temporal_workflow_ids(ports.ui), lambda found: bool(found), timeout=15)
        assert f"graph-run:{run_id}" in ids
        assert second.stop() == 0, second.output
    _assert_nothing_left(second)


def test_up_starts_a_killed_worker_again_and_its_run_completes(tmp_path: Path) -> None:
    """kill -9 of the worker while a 3-call run executes: the stack starts a new worker, Temporal
    retries the run's activity there, and the run ends success with one receipt per model call."""
    data_dir = tmp_path / "data"
    ports = Ports(*_free_ports(3))
    api = f"http://127.0.0.1:{ports.api}"
    with _stack(data_dir, ports, tmp_path / "up.out") as stack:
        demo = json.loads((data_dir / "demo.json").read_text())
        with httpx.Client(
            base_url=api, headers={"Authorization": f"Bearer {demo['api_key']}"}, timeout=10
        ) as http:
            resp = http.post("/api/v1/graphs/langgraph:brief/runs", json={"input": {"topic": "tides"}})
            assert resp.status_code == 202, resp.text
            run_id = resp.json()["run_id"]
            os.kill(stack.pids["worker"], signal.SIGKILL)
            restarted = _eventually(
                stack.read_output, lambda out: "worker was killed by SIGKILL; starting it again" in out
            )
            new_pids = _eventually(
                lambda: json.loads((data_dir / "stack.json").read_text())["pids"],
                lambda pids: pids["worker"] != stack.pids["worker"],
            )
            assert _alive(int(new_pids["worker"])), restarted
            run = _eventually(
                lambda: http.get(f"/api/v1/runs/{run_id}").json(),
                lambda r: r.get("status") in TERMINAL,
                timeout=120,
            )
            assert run["status"] == "success", (run, stack.read_output(), _logs(data_dir))
            receipts = http.get(f"/api/v1/runs/{run_id}/charges").json()["receipts"]
            assert len(receipts) == run["model_calls"] == 3
        stack.pids["worker"] = int(new_pids["worker"])
        assert stack.stop() == 0, stack.output
    _assert_nothing_left(stack)


def test_up_with_a_bad_graph_project_shows_its_one_line_and_stops(tmp_path: Path) -> None:
    """A project the worker refuses (exit 2) is not a crash to restart: the stack stops at once with
    the worker's line naming the file and the entry."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "agent.py").write_text("graph = 42\n")
    config = project / "langgraph.json"
    config.write_text(json.dumps({"dependencies": ["."], "graphs": {"my_agent": "./agent.py:graph"}}))
    data_dir = tmp_path / "data"
    ports = Ports(*_free_ports(3))
    out_path = tmp_path / "up.out"
    with out_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "runledger.cli", "up", "--graphs", str(config)],
            cwd=REPO,
            env=_env(data_dir, ports),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        code = process.wait(timeout=READY_DEADLINE + STOP_DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in _pids_mentioning(str(data_dir)):
            os.kill(pid, signal.SIGKILL)
    output = out_path.read_text(errors="replace")
    assert code == 1, output
    line = (
        f"runledger up: worker refused to start: runledger worker: {config.resolve()}: graphs.my_agent: "
        "./agent.py:graph is a int, not a compiled graph, a StateGraph or a factory"
    )
    assert line in output.splitlines(), output
    assert "starting it again" not in output
    assert (data_dir / "logs" / "worker.log").read_text().count("runledger up starts worker") == 1
    assert not _pids_mentioning(str(data_dir))
