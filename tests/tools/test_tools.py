"""Tools: the runner's policy (DENY_BY_DEFAULT_TOOLS), its pipeline and events, and a graph that uses
its one declared tool end to end on real Postgres and Temporal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from langgraph.pregel import Pregel

from runledger import tools
from runledger.contracts.tools import CURRENT_TIME, TOOL_CATALOG, ToolEffect, ToolErrorCode, ToolSpec
from runledger.projects import builtin_graphs, graph_tools
from runledger.tools.core import REGISTRY
from tests.helpers import Tenant, read_events, start_run, wait_for_run

Events = list[tuple[str, dict[str, Any]]]

ECHO = ToolSpec(
    tool_id="test__echo",
    description="Returns its text.",
    effect=ToolEffect.READ_ONLY,
    input_schema={
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
        "additionalProperties": False,
    },
)


class Recorder:
    """An echo tool that records every execution, and a sink that records every event."""

    def __init__(self, output: dict[str, Any] | None = None, fail: bool = False) -> None:
        self.executed: list[dict[str, Any]] = []
        self.events: Events = []
        self._output = output
        self._fail = fail

    async def echo(self, args: dict[str, Any]) -> dict[str, Any]:
        self.executed.append(args)
        if self._fail:
            raise RuntimeError("the tool broke")
        return self._output if self._output is not None else {"text": args["text"]}

    async def emit(self, event: str, data: dict[str, Any]) -> None:
        self.events.append((event, data))

    def runner(self, policy: tools.ToolPolicy = tools.DENY_ALL) -> tools.ToolRunner:
        return tools.ToolRunner(
            policy=policy, emit=self.emit, catalog={ECHO.tool_id: ECHO}, registry={ECHO.tool_id: self.echo}
        )


ALLOW_ECHO = tools.AllowList(frozenset({ECHO.tool_id}))


async def test_DENY_BY_DEFAULT_TOOLS_a_runner_without_a_policy_runs_nothing() -> None:
    rec = Recorder()
    result = await rec.runner().call(ECHO.tool_id, {"text": "hi"}, call_id="n:tool:0")
    assert not result.ok
    assert result.error_code == ToolErrorCode.POLICY_DENIED
    assert rec.executed == []
    assert [name for name, _ in rec.events] == ["tool_call_result"]
    assert rec.events[0][1]["error_code"] == "tool_policy_denied"


async def test_DENY_BY_DEFAULT_TOOLS_graph_code_with_no_runner_bound_is_denied() -> None:
    """Outside a run (nothing bound), even a real built-in tool is refused."""
    result = await tools.call(CURRENT_TIME.tool_id)
    assert not result.ok
    assert result.error_code == ToolErrorCode.POLICY_DENIED


async def test_DENY_BY_DEFAULT_TOOLS_a_graph_may_use_only_the_tools_it_declares() -> None:
    declared = {g.spec.graph_id: frozenset(g.spec.tool_ids) for g in builtin_graphs()}
    assert declared["langgraph:poet"] == frozenset()
    assert declared["langgraph:dated_note"] == {CURRENT_TIME.tool_id}
    poet = tools.ToolRunner(policy=tools.AllowList(declared["langgraph:poet"]))
    note = tools.ToolRunner(policy=tools.AllowList(declared["langgraph:dated_note"]))
    denied = await poet.call(CURRENT_TIME.tool_id, {}, call_id="c:tool:0")
    allowed = await note.call(CURRENT_TIME.tool_id, {}, call_id="c:tool:0")
    assert denied.error_code == ToolErrorCode.POLICY_DENIED
    assert allowed.ok
    assert allowed.value is not None
    assert allowed.value["utc"].endswith("+00:00")


def test_every_declared_tool_exists_and_is_implemented() -> None:
    assert set(TOOL_CATALOG) == set(REGISTRY)
    for loaded in builtin_graphs():
        own = set(graph_tools(loaded.target)) if isinstance(loaded.target, Pregel) else set()
        assert set(loaded.spec.tool_ids) <= set(TOOL_CATALOG) | own, loaded.spec.graph_id
    for tool_id, spec in TOOL_CATALOG.items():
        # Namespaced: core__ for built-in tools, {provider}__ for a tool acting through a connection.
        assert tool_id.split("__")[0] == (spec.provider or "core"), tool_id


async def test_an_allowed_call_emits_start_then_result() -> None:
    rec = Recorder()
    result = await rec.runner(ALLOW_ECHO).call(ECHO.tool_id, {"text": "hi"}, call_id="n:tool:0")
    assert result.ok
    assert result.value == {"text": "hi"}
    assert rec.executed == [{"text": "hi"}]
    assert rec.events == [
        (
            "tool_call_start",
            {"call_id": "n:tool:0", "tool_id": ECHO.tool_id, "effect": "read_only", "args": {"text": "hi"}},
        ),
        (
            "tool_call_result",
            {"call_id": "n:tool:0", "tool_id": ECHO.tool_id, "ok": True, "result": {"text": "hi"}},
        ),
    ]


@pytest.mark.parametrize(
    ("tool_id", "args", "recorder", "code", "executed", "started"),
    [
        ("test__missing", {"text": "hi"}, Recorder(), ToolErrorCode.UNAVAILABLE, False, False),
        (ECHO.tool_id, {"text": 3}, Recorder(), ToolErrorCode.INVALID_INPUT, False, False),
        (ECHO.tool_id, {"text": "hi", "extra": 1}, Recorder(), ToolErrorCode.INVALID_INPUT, False, False),
        (ECHO.tool_id, {"text": "hi"}, Recorder(fail=True), ToolErrorCode.EXECUTION_FAILED, True, True),
        (
            ECHO.tool_id,
            {"text": "hi"},
            Recorder(output={"text": 7}),
            ToolErrorCode.INVALID_OUTPUT,
            True,
            True,
        ),
    ],
    ids=["unknown", "wrong-type", "extra-field", "raises", "bad-output"],
)
async def test_a_failed_call_is_a_result_not_an_exception(
    tool_id: str, args: dict[str, Any], recorder: Recorder, code: ToolErrorCode, executed: bool, started: bool
) -> None:
    result = await recorder.runner(ALLOW_ECHO).call(tool_id, args, call_id="n:tool:0")
    assert not result.ok
    assert result.error_code == code
    assert bool(recorder.executed) is executed
    names = [name for name, _ in recorder.events]
    assert names == (["tool_call_start", "tool_call_result"] if started else ["tool_call_result"])
    assert recorder.events[-1][1]["ok"] is False
    assert recorder.events[-1][1]["error_code"] == code.value


async def test_current_time_in_a_time_zone_and_an_unknown_zone() -> None:
    runner = tools.ToolRunner(policy=tools.AllowList(frozenset({CURRENT_TIME.tool_id})))
    local = await runner.call(CURRENT_TIME.tool_id, {"timezone": "Asia/Tokyo"}, call_id="c:tool:0")
    assert local.value is not None
    assert local.value["local"].endswith("+09:00")
    unknown = await runner.call(CURRENT_TIME.tool_id, {"timezone": "Mars/Olympus"}, call_id="c:tool:1")
    assert unknown.error_code == ToolErrorCode.INVALID_INPUT


async def test_call_ids_are_per_node_and_stable_within_a_run() -> None:
    rec = Recorder()
    with tools.bind(rec.runner(ALLOW_ECHO)):
        first = await tools.call(ECHO.tool_id, {"text": "a"})
        second = await tools.call(ECHO.tool_id, {"text": "b"})
    assert (first.call_id, second.call_id) == ("call:tool:0", "call:tool:1")


@pytest.mark.usefixtures("worker")
async def test_dated_note_uses_its_tool_and_the_stream_shows_the_call(
    api: httpx.AsyncClient, user: Tenant
) -> None:
    graphs = (await api.get("/api/v1/graphs", headers=user.headers)).json()
    listed = {g["graph_id"]: g["tool_ids"] for g in graphs}
    assert listed["langgraph:dated_note"] == [CURRENT_TIME.tool_id]
    resp = await start_run(
        api, user, "langgraph:dated_note", {"input": {"topic": "tides", "timezone": "Europe/Paris"}}
    )
    assert resp.status_code == 202, resp.text
    run = await wait_for_run(api, user, resp.json()["run_id"])
    assert run["status"] == "success", run
    assert set(run["output"]) == {"note", "written_at"}
    assert run["output"]["written_at"][-6:] in ("+01:00", "+02:00")
    assert run["output"]["note"]
    events = await read_events(api, user, run["run_id"])
    tool_events = [(e.event, e.data) for e in events if e.event.startswith("tool_call")]
    assert [name for name, _ in tool_events] == ["tool_call_start", "tool_call_result"]
    start, result = tool_events[0][1], tool_events[1][1]
    assert start["call_id"] == result["call_id"] == "read_clock:1.tool:0"
    assert start["args"] == {"timezone": "Europe/Paris"}
    assert result["ok"] is True
    assert result["result"]["local"] == run["output"]["written_at"]
    names = [e.event for e in events]
    assert names.index("tool_call_result") < names.index("usage") < names.index("done")


class SpanRecorder:
    """A ``ToolTrace`` that remembers what each span saw: its input, output and error."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []

    @contextmanager
    def __call__(self, tool_id: str, args: dict[str, Any]) -> Iterator[tools.ToolObservation]:
        span: dict[str, Any] = {"tool_id": tool_id, "input": args}
        self.spans.append(span)

        class Observation:
            def record(self, output: Any) -> None:
                span["output"] = output

        try:
            yield Observation()
        except Exception as exc:
            span["error"] = str(exc)
            raise


async def test_each_executed_tool_call_is_one_span_with_its_input_output_or_error() -> None:
    spans = SpanRecorder()
    ok, broken = Recorder(), Recorder(fail=True)
    for rec in (ok, broken):
        runner = tools.ToolRunner(
            policy=ALLOW_ECHO,
            emit=rec.emit,
            trace=spans,
            catalog={ECHO.tool_id: ECHO},
            registry={ECHO.tool_id: rec.echo},
        )
        await runner.call(ECHO.tool_id, {"text": "hi"}, call_id="n:tool:0")
        await runner.call(ECHO.tool_id, {"text": 1}, call_id="n:tool:1")  # refused: never executed
    assert spans.spans == [
        {"tool_id": ECHO.tool_id, "input": {"text": "hi"}, "output": {"text": "hi"}},
        {"tool_id": ECHO.tool_id, "input": {"text": "hi"}, "error": "the tool broke"},
    ]
