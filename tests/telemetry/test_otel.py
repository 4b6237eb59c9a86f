"""OpenTelemetry: a run is one trace, from the API's StartWorkflow span through the workflow and its
activities to every model call, with the trace id derived from the run id. Spans go to an in-memory
exporter on the process's provider; with no exporter configured nothing is exported at all."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id, format_trace_id
from temporalio.client import Client
from temporalio.contrib.opentelemetry import OpenTelemetryPlugin
from temporalio.worker import Replayer

from db.session import Database
from runledger.config import Settings
from runledger.contracts.ids import langfuse_trace_id
from runledger.contracts.runs import GRAPH_RUN_WORKFLOW
from runledger.llm import LiteLLMGateway
from runledger.telemetry import (
    OUTCOME,
    create_tracing,
    install_tracing,
    run_root_span_id,
    run_trace_context,
    temporal_plugins,
)
from runledger.worker import WorkerDeps, build_worker
from tests.conftest import api_client
from tests.helpers import create_user, start_run, wait_for_run
from tests.telemetry.conftest import own_queue
from workflows.registry import WORKFLOWS


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, (name, sorted(s.name for s in spans))
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent else None


async def test_a_run_is_one_trace_from_the_api_start_to_every_model_call(
    settings: Settings,
    database: Database,
    gateway: LiteLLMGateway,
    traced_client: Client,
    otel_spans: InMemorySpanExporter,
) -> None:
    queue = own_queue(settings)
    deps = WorkerDeps(database=database, gateway=gateway)  # no Langfuse: plain OpenTelemetry spans
    async with build_worker(traced_client, queue, deps), api_client(queue, database, traced_client) as api:
        user = await create_user(api, credits=5_000_000)
        started = await start_run(api, user, graph_id="langgraph:brief")
        run = await wait_for_run(api, user, started.json()["run_id"], within=60)
        # Workflow spans end when the workflow does, just after the run row turned terminal.
        await traced_client.get_workflow_handle(run["workflow_id"]).result()
    assert run["status"] == "success", run

    trace_id = int(run["trace_id"], 16)
    everything = list(otel_spans.get_finished_spans())
    spans = [s for s in everything if s.context.trace_id == trace_id]
    # Nothing of the run escaped its trace.
    assert [s for s in everything if (s.attributes or {}).get("runledger.run_id") == run["run_id"]] == [
        s for s in spans if (s.attributes or {}).get("runledger.run_id") == run["run_id"]
    ]

    start = one(spans, f"StartWorkflow:{GRAPH_RUN_WORKFLOW}")
    assert start.parent is not None
    assert format_span_id(start.parent.span_id) == run_root_span_id(run["run_id"])
    workflow = one(spans, f"RunWorkflow:{GRAPH_RUN_WORKFLOW}")
    assert parent_of(workflow) == start.context.span_id
    schedule = one(spans, "StartActivity:execute_graph")
    assert parent_of(schedule) == workflow.context.span_id
    execute = one(spans, "RunActivity:execute_graph")
    assert parent_of(execute) == schedule.context.span_id
    graph = one(spans, "graph langgraph:brief")
    assert parent_of(graph) == execute.context.span_id

    calls = [s for s in spans if (s.attributes or {}).get("gen_ai.operation.name") == "chat"]
    assert len(calls) == 3
    assert {parent_of(c) for c in calls} == {graph.context.span_id}
    for call in calls:
        attributes = call.attributes or {}
        assert call.kind == trace.SpanKind.CLIENT
        assert attributes["gen_ai.usage.input_tokens"] > 0  # type: ignore[operator]
        assert attributes["gen_ai.usage.output_tokens"] > 0  # type: ignore[operator]
        assert attributes["gen_ai.response.id"]
        assert attributes["runledger.billing_account_id"] == user.billing_account_id
    assert sorted(str((c.attributes or {})["runledger.node"]) for c in calls) == [
        "draft",
        "outline",
        "review",
    ]

    # The execution that finished the graph ended the run: no finalize step, one outcome, its child.
    assert [s for s in spans if s.name == "RunActivity:finalize_run"] == []
    outcome = one(spans, OUTCOME)
    assert parent_of(outcome) == execute.context.span_id
    assert (outcome.attributes or {})["runledger.status"] == "success"

    # The traced history still replays with the plugin (workflow code itself makes no spans).
    history = await traced_client.get_workflow_handle(run["workflow_id"]).fetch_history()
    await Replayer(
        workflows=WORKFLOWS, plugins=[OpenTelemetryPlugin(add_temporal_spans=True)]
    ).replay_workflow(history)


async def test_a_tool_call_is_a_span_of_the_graph_execution(
    settings: Settings,
    database: Database,
    gateway: LiteLLMGateway,
    traced_client: Client,
    otel_spans: InMemorySpanExporter,
) -> None:
    queue = own_queue(settings)
    deps = WorkerDeps(database=database, gateway=gateway)
    async with build_worker(traced_client, queue, deps), api_client(queue, database, traced_client) as api:
        user = await create_user(api, credits=5_000_000)
        started = await start_run(api, user, "langgraph:dated_note", {"input": {"topic": "tides"}})
        run = await wait_for_run(api, user, started.json()["run_id"], within=60)
    assert run["status"] == "success", run
    spans = [s for s in otel_spans.get_finished_spans() if s.context.trace_id == int(run["trace_id"], 16)]
    graph = one(spans, "graph langgraph:dated_note")
    tool = one(spans, "execute_tool core__current_time")
    assert parent_of(tool) == graph.context.span_id
    attributes = tool.attributes or {}
    assert attributes["gen_ai.tool.name"] == "core__current_time"
    assert attributes["runledger.run_id"] == run["run_id"]
    chat = [s for s in spans if (s.attributes or {}).get("gen_ai.operation.name") == "chat"]
    assert len(chat) == 1
    assert tool.end_time is not None
    assert chat[0].start_time is not None
    assert tool.end_time <= chat[0].start_time  # the clock is read before the note is written


def test_tracing_is_installed_once_and_exports_nothing_unless_configured(settings: Settings) -> None:
    quiet = own_queue(settings)
    assert quiet.otel_exporter_otlp_endpoint is None
    tracing = install_tracing(quiet)
    assert install_tracing(quiet) is tracing
    assert tracing.is_global
    assert trace.get_tracer_provider() is tracing.replay_safe
    # Temporal's spans only when they go somewhere (or asked for): no interceptor cost otherwise.
    assert temporal_plugins(quiet) == []
    assert quiet.model_copy(update={"otel_exporter_otlp_endpoint": "http://127.0.0.1:4318"}).temporal_spans
    on = temporal_plugins(quiet.model_copy(update={"temporal_tracing": "on"}))
    assert len(on) == 1
    assert isinstance(on[0], OpenTelemetryPlugin)
    # A provider with nothing configured has no span processor: spans are made and dropped.
    fresh = create_tracing()
    assert fresh.processors == []
    with fresh.replay_safe.get_tracer("test").start_as_current_span("cheap") as span:
        assert span.is_recording()
    fresh.provider.shutdown()


def test_run_trace_context_opens_the_runs_trace() -> None:
    run_id = "4f7a8a43-1d8e-4bd4-9c5e-3f7b37f0d7a1"
    with run_trace_context(run_id):
        current = trace.get_current_span().get_span_context()
        assert format_trace_id(current.trace_id) == langfuse_trace_id(run_id)
        assert format_span_id(current.span_id) == run_root_span_id(run_id)
        assert current.trace_flags.sampled
    assert not trace.get_current_span().get_span_context().is_valid


async def test_the_api_makes_no_request_spans_when_nothing_exports_them(
    settings: Settings, database: Database, client: Client, otel_spans: InMemorySpanExporter
) -> None:
    quiet = own_queue(settings)
    async with api_client(quiet, database, client) as api:
        otel_spans.clear()
        with trace.get_tracer("test").start_as_current_span("probe"):
            assert (await api.get("/healthz")).status_code == 200
    # The provider records (the probe's span is there), but FastAPI made none for the request.
    assert [s.name for s in otel_spans.get_finished_spans()] == ["probe"]
