"""Structured logs: with :func:`runledger.logs.configure_logging` every line is one JSON object, and the
lines of a run carry its run_id, workflow_id and graph node (worker interceptor + ``llm.call``),
whether they come from structlog or from the standard library (uvicorn, temporalio, LiteLLM)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog

from runledger.logs import OWN_HANDLERS, QUIET_AT_INFO, configure_logging
from tests.helpers import Tenant, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The process's logging configured as ``runledger worker`` does, into a buffer; restored after."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    libraries = {name: logging.getLogger(name) for name in {*OWN_HANDLERS, *QUIET_AT_INFO}}
    saved_libraries = {name: (list(lg.handlers), lg.level, lg.propagate) for name, lg in libraries.items()}
    saved_structlog = structlog.get_config()
    stream = io.StringIO()
    configure_logging("info", json=True, stream=stream)
    try:
        yield stream
    finally:
        logging.captureWarnings(False)
        structlog.configure(**saved_structlog)
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_root[0]:
            root.addHandler(handler)
        root.setLevel(saved_root[1])
        for name, (handlers, level, propagate) in saved_libraries.items():
            lg = libraries[name]
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line, which must each be one JSON object."""
    parsed = []
    for line in stream.getvalue().splitlines():
        value = json.loads(line)
        assert isinstance(value, dict), line
        parsed.append(value)
    return parsed


async def test_a_runs_log_lines_are_json_with_run_workflow_and_node(
    api: httpx.AsyncClient, user: Tenant, json_logs: io.StringIO
) -> None:
    run_id = (await start_run(api, user, graph_id="langgraph:brief")).json()["run_id"]
    run = await wait_for_run(api, user, run_id)
    assert run["status"] == "success", run

    logged = lines(json_logs)
    calls = [line for line in logged if line["event"] == "model_call" and line.get("run_id") == run_id]
    assert len(calls) == 3 == run["model_calls"]
    assert {line["node"] for line in calls} == {"outline", "draft", "review"}
    for line in calls:
        assert line["workflow_id"] == f"graph-run:{run_id}"
        assert line["activity"] == "execute_graph"
        assert line["attempt"] == 1
        assert line["call_key"].rsplit(":", 1)[0] == line["node"]
        assert line["call_key"].endswith(".0")  # the node's first call in its step
        assert line["level"] == "info"
        assert line["logger"] == "activities.metering"
        assert line["timestamp"].endswith("Z")
        assert line["model"]
        assert line["tokens_in"] > 0
        assert line["tokens_out"] > 0
        assert line["credits"] > 0
    assert sum(line["credits"] for line in calls) == run["cost_credits"]


def test_standard_library_lines_are_json_with_the_bound_context(json_logs: io.StringIO) -> None:
    with structlog.contextvars.bound_contextvars(run_id="r-1", workflow_id="graph-run:r-1", node="draft"):
        logging.getLogger("uvicorn.error").warning("listening on %s:%d", "127.0.0.1", 8000)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("temporalio.worker").exception("activity failed")
    # temporalio's own loggers name the workflow in a record attribute: it is lifted into the line.
    logging.getLogger("temporalio.activity").warning(
        "completing activity as failed",
        extra={"temporal_activity": {"workflow_id": "graph-run:r-2", "activity_type": "execute_graph"}},
    )
    logging.getLogger("LiteLLM").info("every completion, too chatty at INFO")
    uvicorn_line, failure, temporal_line = lines(json_logs)
    assert uvicorn_line["event"] == "listening on 127.0.0.1:8000"
    assert uvicorn_line["logger"] == "uvicorn.error"
    assert uvicorn_line["level"] == "warning"
    assert (uvicorn_line["run_id"], uvicorn_line["workflow_id"], uvicorn_line["node"]) == (
        "r-1",
        "graph-run:r-1",
        "draft",
    )
    assert failure["level"] == "error"
    assert "ValueError: boom" in failure["exception"]
    assert failure["run_id"] == "r-1"
    assert (temporal_line["run_id"], temporal_line["workflow_id"]) == ("r-2", "graph-run:r-2")
