"""Langfuse: a trace per run (id derived from the run id) with a generation per provider call, tags,
metadata, exactly one outcome, and no secrets; nothing at all without keys.

Spans go to an in-memory exporter: the Langfuse host below is never contacted. Langfuse clients are
singletons per public key, so every test uses a public key of its own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id, format_trace_id
from pydantic import SecretStr, ValidationError
from temporalio.client import Client

from activities.runs import RunActivities
from db.session import Database
from runledger.config import Settings
from runledger.contracts.runs import FinalizeInput, RunStatus
from runledger.llm import LiteLLMGateway
from runledger.telemetry import (
    OUTCOME,
    REDACTED,
    RunRef,
    RunTracer,
    Scrubber,
    build_run_tracer,
    langfuse_trace_url,
    run_root_span_id,
    scrub,
)
from runledger.worker import WorkerDeps, build_worker
from tests.conftest import api_client
from tests.helpers import create_user, start_run, wait_for_run
from tests.lost_workers import LoseWorkerAfterCharging
from tests.telemetry.conftest import own_queue

HOST = "https://langfuse.example"
#: Looks like an OpenAI key: it must never reach a span.
SECRET = f"sk-test{uuid.uuid4().hex}"
LANGFUSE_SECRET = "sk-lf-test-secret-key"


@pytest.fixture
def lf_settings(settings: Settings) -> Settings:
    return own_queue(
        settings,
        langfuse_public_key=SecretStr(f"pk-lf-test-{uuid.uuid4().hex}"),
        langfuse_secret_key=SecretStr(LANGFUSE_SECRET),
        langfuse_host=HOST,
    )


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(lf_settings: Settings, exported: InMemorySpanExporter) -> Iterator[RunTracer]:
    tracer = build_run_tracer(lf_settings, span_exporter=exported)
    assert tracer.langfuse is not None
    yield tracer
    tracer.shutdown()


def attr(span: ReadableSpan, key: str) -> Any:
    assert span.attributes is not None
    return span.attributes.get(key)


def observation_type(span: ReadableSpan) -> Any:
    return attr(span, "langfuse.observation.type")


def meta(span: ReadableSpan, key: str, level: str = "observation") -> Any:
    raw = attr(span, f"langfuse.{level}.metadata.{key}")
    return None if raw is None else json.loads(raw)


def everything_exported(spans: Sequence[ReadableSpan]) -> str:
    """Every attribute, event and status text of the spans, as one string to search."""
    parts: list[str] = []
    for span in spans:
        parts.append(span.name)
        parts.extend(f"{k}={v!r}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            parts.extend(f"{k}={v!r}" for k, v in (event.attributes or {}).items())
        parts.append(span.status.description or "")
    return "\n".join(parts)


async def test_run_trace_has_a_generation_per_call_tags_metadata_one_outcome_and_no_secrets(
    lf_settings: Settings,
    database: Database,
    gateway: LiteLLMGateway,
    traced_client: Client,
    otel_spans: InMemorySpanExporter,
    exported: InMemorySpanExporter,
    tracer: RunTracer,
) -> None:
    deps = WorkerDeps(database=database, gateway=gateway, tracer=tracer)
    async with (
        build_worker(traced_client, lf_settings, deps),
        api_client(lf_settings, database, traced_client) as api,
    ):
        user = await create_user(api, credits=5_000_000)
        started = await start_run(
            api, user, graph_id="langgraph:brief", payload={"input": {"topic": f"rivers {SECRET}"}}
        )
        assert started.status_code == 202, started.text
        run = await wait_for_run(api, user, started.json()["run_id"], within=60)
        receipts = (await api.get(f"/api/v1/runs/{run['run_id']}/charges", headers=user.headers)).json()[
            "receipts"
        ]
        await traced_client.get_workflow_handle(run["workflow_id"]).result()
    tracer.flush()
    spans = exported.get_finished_spans()

    assert run["status"] == "success", run
    assert run["links"]["langfuse"] == f"{HOST}/trace/{run['trace_id']}"
    # One trace per run, its id derived from the run id: the one the API shows.
    assert {format_trace_id(s.context.trace_id) for s in spans} == {run["trace_id"]}

    generations = [s for s in spans if observation_type(s) == "generation"]
    assert sorted(s.name for s in generations) == ["draft", "outline", "review"]
    by_unit = {r["usage_unit_id"]: r for r in receipts}
    assert len(by_unit) == 3
    for gen in generations:
        receipt = by_unit[meta(gen, "usage_unit_id")]
        assert attr(gen, "langfuse.observation.model.name") == receipt["model"]
        usage = json.loads(attr(gen, "langfuse.observation.usage_details"))
        assert (usage["input"], usage["output"]) == (receipt["tokens_in"], receipt["tokens_out"])
        cost = json.loads(attr(gen, "langfuse.observation.cost_details"))
        assert cost == {"total": float(Decimal(receipt["cost_usd"]))}
        assert json.loads(attr(gen, "langfuse.observation.input"))[0]["role"] == "system"
        assert attr(gen, "langfuse.observation.output")
        assert {"graph:langgraph:brief", f"node:{gen.name}"} <= set(attr(gen, "langfuse.trace.tags"))
        assert meta(gen, "run_id") == run["run_id"]
        assert meta(gen, "billing_account_id") == user.billing_account_id
        assert meta(gen, "attempt") == "1"
        assert meta(gen, "node") == gen.name
        assert meta(gen, "run_id", level="trace") == run["run_id"]

    # The generations are children of the graph execution, itself a child of the activity's
    # span: the trace continues the OpenTelemetry context that Temporal carried from the API.
    (execution,) = [s for s in spans if observation_type(s) == "chain"]
    assert execution.name == "langgraph:brief"
    assert {g.parent.span_id for g in generations if g.parent} == {execution.context.span_id}
    (activity_span,) = [s for s in otel_spans.get_finished_spans() if s.name == "RunActivity:execute_graph"]
    assert execution.parent is not None
    assert execution.parent.span_id == activity_span.context.span_id
    assert format_trace_id(activity_span.context.trace_id) == run["trace_id"]

    (outcome,) = [s for s in spans if s.name == OUTCOME]
    assert observation_type(outcome) == "event"
    summary = json.loads(attr(outcome, "langfuse.observation.output"))
    assert summary["status"] == "success"
    assert (summary["model_calls"], summary["cost_credits"]) == (3, run["cost_credits"])
    assert "status:success" in attr(outcome, "langfuse.trace.tags")

    # Secrets never leave: not the one in the input (echoed by the fake provider), nor configured ones.
    dumped = everything_exported([*spans, *otel_spans.get_finished_spans()])
    assert SECRET not in dumped
    assert LANGFUSE_SECRET not in dumped
    assert REDACTED in attr(execution, "langfuse.observation.input")
    assert any(REDACTED in attr(g, "langfuse.observation.input") for g in generations)


async def test_replayed_calls_make_no_second_generation_and_finalize_reports_once(
    lf_settings: Settings,
    database: Database,
    gateway: LiteLLMGateway,
    client: Client,
    exported: InMemorySpanExporter,
    tracer: RunTracer,
) -> None:
    # The session's client has no tracing plugin: spans still land in the run's trace, under its
    # virtual root.
    deps = WorkerDeps(database=database, gateway=gateway, tracer=tracer)
    async with (
        build_worker(client, lf_settings, deps, activities_cls=LoseWorkerAfterCharging),
        api_client(lf_settings, database, client) as api,
    ):
        user = await create_user(api, credits=5_000_000)
        started = await start_run(api, user, graph_id="langgraph:brief")
        run = await wait_for_run(api, user, started.json()["run_id"], within=60)
    assert run["status"] == "success", run
    # finalize is idempotent: a repeated call does not move the run, so it reports nothing.
    acts = RunActivities(
        database=database, gateway=gateway, settings=lf_settings, registry=deps.registry, tracer=tracer
    )
    again = await acts.finalize(FinalizeInput(run_id=run["run_id"], status=RunStatus.SUCCESS))
    assert not again.changed
    tracer.flush()
    spans = exported.get_finished_spans()

    assert {format_trace_id(s.context.trace_id) for s in spans} == {run["trace_id"]}
    executions = [s for s in spans if observation_type(s) == "chain"]
    assert sorted(meta(s, "attempt") for s in executions) == ["1", "2"]
    root = run_root_span_id(run["run_id"])
    assert {format_span_id(s.parent.span_id) for s in executions if s.parent} == {root}
    generations = [s for s in spans if observation_type(s) == "generation"]
    assert len(generations) == 3  # the retry's three calls were replayed from the ledger
    assert {meta(g, "attempt") for g in generations} == {"1"}
    assert len([s for s in spans if s.name == OUTCOME]) == 1


def test_tool_span_records_scrubbed_input_output_and_errors(
    exported: InMemorySpanExporter, tracer: RunTracer
) -> None:
    run = RunRef(run_id=str(uuid.uuid4()), graph_id="langgraph:poet", billing_account_id="acct-1")
    with tracer.execution(run, attempt=1, input={"topic": "tools"}):
        with tracer.tool_call(
            run,
            attempt=1,
            name="web_search",
            input={"query": "weather", "api_key": "k-123456789", "headers": {"Authorization": "Basic abc"}},
        ) as tool:
            tool.record({"results": ["sunny"], "token": "t-123456789", "note": f"key {SECRET}"})
        with (
            pytest.raises(RuntimeError, match="refused"),
            tracer.tool_call(run, attempt=1, name="fetch", input={}),
        ):
            raise RuntimeError(f"upstream refused {SECRET}")
    tracer.flush()
    spans = exported.get_finished_spans()

    search, fetch = (next(s for s in spans if s.name == name) for name in ("web_search", "fetch"))
    (execution,) = [s for s in spans if observation_type(s) == "chain"]
    for span in (search, fetch):
        assert observation_type(span) == "tool"
        assert format_trace_id(span.context.trace_id) == run.trace_id
        assert span.parent is not None
        assert span.parent.span_id == execution.context.span_id
        assert meta(span, "run_id") == run.run_id
    assert json.loads(attr(search, "langfuse.observation.input")) == {
        "query": "weather",
        "api_key": REDACTED,
        "headers": {"Authorization": REDACTED},
    }
    assert json.loads(attr(search, "langfuse.observation.output")) == {
        "results": ["sunny"],
        "token": REDACTED,
        "note": f"key {REDACTED}",
    }
    assert {"graph:langgraph:poet", "tool:web_search"} <= set(attr(search, "langfuse.trace.tags"))
    assert attr(fetch, "langfuse.observation.level") == "ERROR"
    assert attr(fetch, "langfuse.observation.status_message") == f"RuntimeError: upstream refused {REDACTED}"
    assert not fetch.events  # the raw exception is never recorded on the span
    assert SECRET not in everything_exported(spans)


async def test_without_langfuse_keys_no_client_is_constructed(
    settings: Settings,
    database: Database,
    gateway: LiteLLMGateway,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import langfuse
    from langfuse._client.resource_manager import LangfuseResourceManager

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Langfuse client was constructed")

    monkeypatch.setattr(langfuse, "Langfuse", refuse)
    clients_before = dict(LangfuseResourceManager._instances)
    plain = own_queue(settings)
    assert not plain.langfuse_enabled
    tracer = build_run_tracer(plain)
    assert tracer.langfuse is None
    deps = WorkerDeps(database=database, gateway=gateway, tracer=tracer)
    async with build_worker(client, plain, deps), api_client(plain, database, client) as api:
        user = await create_user(api, credits=1_000_000)
        started = await start_run(api, user)
        run = await wait_for_run(api, user, started.json()["run_id"])
    assert run["status"] == "success"
    assert run["links"]["langfuse"] is None
    assert dict(LangfuseResourceManager._instances) == clients_before


def test_langfuse_settings_come_in_pairs_and_give_trace_links() -> None:
    with pytest.raises(ValidationError, match="must be set together"):
        Settings.model_validate({"LANGFUSE_PUBLIC_KEY": "pk-lf-1"})
    with pytest.raises(ValidationError, match="http"):
        Settings.model_validate({"LANGFUSE_HOST": "langfuse.internal:3000"})
    on = Settings.model_validate(
        {
            "LANGFUSE_PUBLIC_KEY": "pk-lf-1",
            "LANGFUSE_SECRET_KEY": "sk-lf-1",
            "LANGFUSE_HOST": "http://lf:3000/",
        }
    )
    assert on.langfuse_enabled
    assert langfuse_trace_url(on, "ab" * 16) == f"http://lf:3000/trace/{'ab' * 16}"
    cloud = Settings.model_validate({"LANGFUSE_PUBLIC_KEY": "pk-lf-1", "LANGFUSE_SECRET_KEY": "sk-lf-1"})
    assert langfuse_trace_url(cloud, "ab" * 16) == f"https://cloud.langfuse.com/trace/{'ab' * 16}"
    blank = Settings.model_validate({"LANGFUSE_PUBLIC_KEY": "", "LANGFUSE_SECRET_KEY": " "})
    assert not blank.langfuse_enabled
    assert langfuse_trace_url(blank, "ab" * 16) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"api_key": "abc", "X-Api-Key": "abc", "db_password": "p"},
            {k: REDACTED for k in ("api_key", "X-Api-Key", "db_password")},
        ),
        (
            {"Authorization": "Bearer x", "client_secret": "s", "refresh_token": "r"},
            {k: REDACTED for k in ("Authorization", "client_secret", "refresh_token")},
        ),
        # Counts and ids that merely mention tokens are kept.
        (
            {"max_tokens": 10, "tokens_in": 3, "usage_unit_id": "u"},
            {"max_tokens": 10, "tokens_in": 3, "usage_unit_id": "u"},
        ),
        ("call with Bearer abcdefgh.ijklmnop now", f"call with Bearer {REDACTED} now"),
        (f"my key is {SECRET}.", f"my key is {REDACTED}."),
        ("api key rl_" + "A" * 43, f"api key {REDACTED}"),
        ("postgresql://app:hunter2hunter2@db:5432/x", f"postgresql://app:{REDACTED}@db:5432/x"),
        ("a task-force and a desk-lamp", "a task-force and a desk-lamp"),
        ([{"role": "user", "content": f"use {SECRET}"}], [{"role": "user", "content": f"use {REDACTED}"}]),
        ({"nested": {"deeper": ({"token": None}, 7)}}, {"nested": {"deeper": [{"token": None}, 7]}}),
    ],
)
def test_scrub(value: Any, expected: Any) -> None:
    assert scrub(value) == expected


def test_scrubber_removes_configured_secrets_anywhere() -> None:
    scrubber = Scrubber(["s3cr3t-admin-token", "short"])
    assert scrubber.text("admin s3cr3t-admin-token, and short") == f"admin {REDACTED}, and short"
