"""The spans of a run: its graph execution, one generation per model call, tool calls, and its
terminal outcome, all in the run's trace (id derived from the run id).

With Langfuse configured they are Langfuse observations (a trace per run: tags, metadata, usage and
cost, scrubbed input and output), created on the process's OpenTelemetry provider; without it they
are plain OpenTelemetry spans with ``gen_ai.*`` attributes and no content. Either way each span is a
child of the current OpenTelemetry context when that context is the run's trace (a run started by a
traced client), else of the run's virtual root, linked to the current span.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from runledger.contracts.ids import langfuse_trace_id
from runledger.contracts.scrub import Scrubber
from runledger.telemetry._otel import (
    TRACER_NAME,
    in_run_trace,
    run_root_span_context,
    run_root_span_id,
)

if TYPE_CHECKING:
    from langfuse import Langfuse, LangfuseChain, LangfuseGeneration, LangfuseTool
    from langfuse.api import MapValue
    from langfuse.types import SpanLevel, TraceContext
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

OUTCOME = "run.outcome"

log = logging.getLogger(__name__)


class _Observation(Protocol):
    def update(self, *, level: SpanLevel | None = None, status_message: str | None = None) -> object: ...


_O = TypeVar("_O", bound=_Observation)


@dataclass(frozen=True)
class RunRef:
    """What every span of a run is tagged with."""

    run_id: str
    graph_id: str
    billing_account_id: str

    @property
    def trace_id(self) -> str:
        return langfuse_trace_id(self.run_id)

    def metadata(self, attempt: int | None = None) -> dict[str, str]:
        found = {
            "run_id": self.run_id,
            "graph_id": self.graph_id,
            "billing_account_id": self.billing_account_id,
        }
        if attempt is not None:
            found["attempt"] = str(attempt)
        return found

    def attributes(self, attempt: int | None = None) -> dict[str, AttributeValue]:
        return {f"runledger.{key}": value for key, value in self.metadata(attempt).items()}


def graph_tag(graph_id: str) -> str:
    return f"graph:{graph_id}"


def node_tag(node: str) -> str:
    return f"node:{node}"


class ModelCall:
    """The span of one model call; :meth:`record` its result once the provider answered."""

    def __init__(
        self, scrubber: Scrubber, generation: LangfuseGeneration | None = None, span: Span | None = None
    ) -> None:
        self._scrub = scrubber
        self._generation = generation
        self._span = span

    def record(
        self,
        *,
        model: str,
        output: str,
        tokens_in: int,
        tokens_out: int,
        cost_usd: Decimal,
        usage_unit_id: str,
    ) -> None:
        """Never raises: the call is paid for and about to be charged, whatever tracing does."""
        try:
            self._record(model, output, tokens_in, tokens_out, cost_usd, usage_unit_id)
        except Exception:
            log.exception("could not record the model call on its span")

    def _record(
        self, model: str, output: str, tokens_in: int, tokens_out: int, cost_usd: Decimal, usage_unit_id: str
    ) -> None:
        extra = {"usage_unit_id": usage_unit_id, "cost_usd": str(cost_usd)}
        if self._generation is not None:
            self._generation.update(
                model=model,
                output=self._scrub.text(output),
                usage_details={"input": tokens_in, "output": tokens_out, "total": tokens_in + tokens_out},
                # Langfuse takes floats; the ledger keeps the exact Decimal (and is the record of money).
                cost_details={"total": float(cost_usd)},
                metadata=extra,
            )
        if self._span is not None:
            self._span.set_attributes(
                {
                    "gen_ai.response.model": model,
                    "gen_ai.response.id": usage_unit_id,
                    "gen_ai.usage.input_tokens": tokens_in,
                    "gen_ai.usage.output_tokens": tokens_out,
                    **{f"runledger.{key}": value for key, value in extra.items()},
                }
            )


class Observed:
    """The span of a graph execution or a tool call; :meth:`record` its output (kept, scrubbed, by
    Langfuse only: plain OpenTelemetry spans carry no content)."""

    def __init__(self, scrubber: Scrubber, observation: LangfuseChain | LangfuseTool | None = None) -> None:
        self._scrub = scrubber
        self._observation = observation

    def record(self, output: Any) -> None:
        if self._observation is None:
            return
        try:
            self._observation.update(output=self._scrub(output))
        except Exception:
            log.exception("could not record the output on its span")


class RunTracer:
    """Creates the spans of runs. ``RunTracer()`` has no Langfuse client: it makes plain
    OpenTelemetry spans on the global provider (no-ops unless one is installed)."""

    def __init__(
        self,
        *,
        langfuse: Langfuse | None = None,
        tracer_provider: SdkTracerProvider | None = None,
        scrubber: Scrubber | None = None,
    ) -> None:
        self._langfuse = langfuse
        self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        self._scrub = scrubber or Scrubber()

    @property
    def langfuse(self) -> Langfuse | None:
        return self._langfuse

    @contextmanager
    def execution(self, run: RunRef, *, attempt: int, input: Mapping[str, Any]) -> Iterator[Observed]:
        """The graph execution of one activity attempt; the model and tool calls inside it are its
        children, tagged with the graph and the run's metadata."""
        if self._langfuse is None:
            with self._span(run, f"graph {run.graph_id}", {**run.attributes(attempt)}):
                yield Observed(self._scrub)
            return
        observation = self._langfuse.start_as_current_observation(
            trace_context=self._trace_context(run),
            name=run.graph_id,
            as_type="chain",
            input=self._scrub(dict(input)),
            metadata=run.metadata(attempt),
        )
        with self._observed(
            observation,
            trace_name=run.graph_id,
            user_id=run.billing_account_id,
            tags=[graph_tag(run.graph_id)],
            metadata=run.metadata(),  # the attempt is the observation's, not the trace's
        ) as chain:
            yield Observed(self._scrub, chain)

    @contextmanager
    def model_call(
        self,
        run: RunRef,
        *,
        attempt: int,
        call_key: str,
        model: str,
        messages: Sequence[Mapping[str, str]],
        max_tokens: int | None = None,
    ) -> Iterator[ModelCall]:
        """One provider call (a Langfuse generation): usage and cost come through
        :meth:`ModelCall.record`. Calls replayed from the ledger are not provider calls: no span."""
        node = call_key.rsplit(":", 1)[0]
        metadata = {**run.metadata(attempt), "node": node, "call_key": call_key}
        parameters: dict[str, MapValue] = {} if max_tokens is None else {"max_tokens": max_tokens}
        if self._langfuse is None:
            attributes: dict[str, AttributeValue] = {
                **run.attributes(attempt),
                "runledger.node": node,
                "runledger.call_key": call_key,
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": model,
            }
            if max_tokens is not None:
                attributes["gen_ai.request.max_tokens"] = max_tokens
            with self._span(run, f"chat {model}", attributes, kind=trace.SpanKind.CLIENT) as span:
                yield ModelCall(self._scrub, span=span)
            return
        observation = self._langfuse.start_as_current_observation(
            trace_context=self._trace_context(run),
            name=node,
            as_type="generation",
            model=model,
            model_parameters=parameters,
            input=self._scrub([dict(m) for m in messages]),
            metadata=metadata,
        )
        with self._observed(observation, tags=[graph_tag(run.graph_id), node_tag(node)]) as generation:
            yield ModelCall(self._scrub, generation=generation)

    @contextmanager
    def tool_call(self, run: RunRef, *, attempt: int, name: str, input: Any) -> Iterator[Observed]:
        """One tool call: its (scrubbed) input, and the output given to :meth:`Observed.record`."""
        if self._langfuse is None:
            attributes: dict[str, AttributeValue] = {
                **run.attributes(attempt),
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
            }
            with self._span(run, f"execute_tool {name}", attributes):
                yield Observed(self._scrub)
            return
        observation = self._langfuse.start_as_current_observation(
            trace_context=self._trace_context(run),
            name=name,
            as_type="tool",
            input=self._scrub(input),
            metadata={**run.metadata(attempt), "tool": name},
        )
        with self._observed(observation, tags=[graph_tag(run.graph_id), f"tool:{name}"]) as tool:
            yield Observed(self._scrub, tool)

    def outcome(
        self,
        run: RunRef,
        *,
        status: str,
        error_code: str | None = None,
        error_message: str | None = None,
        model_calls: int = 0,
        cost_credits: int = 0,
    ) -> None:
        """The run's terminal status, once per run: the caller calls this only when it is the one
        that moved the run to its terminal status. Never raises (the status is already committed)."""
        try:
            self._outcome(run, status, error_code, error_message, model_calls, cost_credits)
        except Exception:
            log.exception("could not record the outcome of run %s", run.run_id)

    def _outcome(
        self,
        run: RunRef,
        status: str,
        error_code: str | None,
        error_message: str | None,
        model_calls: int,
        cost_credits: int,
    ) -> None:
        message = None if error_message is None else self._scrub.text(error_message)
        summary: dict[str, Any] = {
            "status": status,
            "error_code": error_code,
            "error_message": message,
            "model_calls": model_calls,
            "cost_credits": cost_credits,
        }
        if self._langfuse is None:
            attributes: dict[str, AttributeValue] = {
                **run.attributes(),
                "runledger.status": status,
                "runledger.model_calls": model_calls,
                "runledger.cost_credits": cost_credits,
            }
            if error_code is not None:
                attributes["runledger.error_code"] = error_code
            with self._span(run, OUTCOME, attributes) as span:
                if status == "error":
                    span.set_status(Status(StatusCode.ERROR, message or error_code))
            return
        from langfuse import propagate_attributes

        level: SpanLevel = "DEFAULT" if status == "success" else "ERROR" if status == "error" else "WARNING"
        # A non-recording stand-in for the current span (same ids): the event stays its child,
        # while the propagated trace attributes touch only the event.
        stand_in = NonRecordingSpan(trace.get_current_span().get_span_context())
        with (
            trace.use_span(stand_in, end_on_exit=False),
            propagate_attributes(
                trace_name=run.graph_id,
                user_id=run.billing_account_id,
                tags=[graph_tag(run.graph_id), f"status:{status}"],
                metadata={**run.metadata(), "status": status},
            ),
        ):
            self._langfuse.create_event(
                trace_context=self._trace_context(run),
                name=OUTCOME,
                output=summary,
                metadata={**run.metadata(), "status": status},
                level=level,
                status_message=message,
            )

    def flush(self) -> None:
        if self._langfuse is not None:
            self._langfuse.flush()

    def shutdown(self) -> None:
        """Flush and stop the Langfuse client's threads (blocks while its host is unreachable)."""
        if self._langfuse is not None:
            self._langfuse.shutdown()

    # -- helpers --------------------------------------------------------------------------------

    @contextmanager
    def _observed(self, observation: AbstractContextManager[_O], **trace_attributes: Any) -> Iterator[_O]:
        """Enter a Langfuse observation and propagate trace attributes inside it (so they land on
        it and its children, never on Temporal's span). A failure is recorded by hand, scrubbed,
        and re-raised once the observation has ended: the span never records the raw exception."""
        from langfuse import propagate_attributes

        error: BaseException | None = None
        with observation as entered, propagate_attributes(**trace_attributes):
            try:
                yield entered
            except BaseException as exc:
                error = exc
                entered.update(level="ERROR", status_message=self._describe(exc))
        if error is not None:
            raise error

    def _trace_context(self, run: RunRef) -> TraceContext | None:
        if in_run_trace(run.run_id):
            return None  # a child of the current span
        return {"trace_id": run.trace_id, "parent_span_id": run_root_span_id(run.run_id)}

    @contextmanager
    def _span(
        self,
        run: RunRef,
        name: str,
        attributes: dict[str, AttributeValue],
        *,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    ) -> Iterator[Span]:
        parent: Context | None = None
        links: list[Link] = []
        if not in_run_trace(run.run_id):
            current = trace.get_current_span().get_span_context()
            if current.is_valid:
                links.append(Link(current))
            parent = trace.set_span_in_context(NonRecordingSpan(run_root_span_context(run.run_id)))
        with self._tracer.start_as_current_span(
            name,
            context=parent,
            kind=kind,
            attributes=attributes,
            links=links,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as exc:
                span.set_status(Status(StatusCode.ERROR, self._describe(exc)))
                raise

    def _describe(self, exc: BaseException) -> str:
        return self._scrub.text(f"{type(exc).__name__}: {exc}")
