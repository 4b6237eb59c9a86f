"""Binding a gateway and a meter for the graph code running in the current context.

Contract:
- The execute activity binds (:func:`bind`) the gateway, the run's meter, the graph's default model
  and where unmetered calls are reported, around the graph run. LangGraph runs async nodes as tasks
  that copy the caller's ``contextvars`` context, so every node sees that binding.
- :func:`call` is the one way a model is called (``runledger.sdk.ChatModel`` uses it): it gives the
  call its key (``{node}:{step}.{n}``, stable across a retried execution of the same graph) and
  hands it to the meter. With nothing bound (outside a run) it raises :class:`ModelNotBoundError`: there is no
  unmetered path.
- :func:`report_unmetered` is how the LiteLLM guard reports a call that bypassed :func:`call`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from runledger.llm.types import ModelDelta, ModelRequest, ModelResponse

log = structlog.get_logger(__name__)

#: Receives the text of a streaming answer as it arrives (the run's ``text_delta`` events).
DeltaSink = Callable[[str], Awaitable[None]]
#: Receives every streamed piece of an answer, tool-call pieces included (a LangChain stream).
ChunkSink = Callable[[ModelDelta], Awaitable[None]]
#: What the meter calls to reach the provider: the request and the run's text sink.
Invoke = Callable[[ModelRequest, DeltaSink | None], Awaitable[ModelResponse]]


class Gateway(Protocol):
    def __call__(
        self, request: ModelRequest, on_delta: DeltaSink | None = None, on_chunk: ChunkSink | None = None
    ) -> Awaitable[ModelResponse]: ...


class Meter(Protocol):
    """Wraps every model call of a run: decides whether the provider is asked at all (a settled
    call is answered from its record) and records the charge."""

    async def call(self, call_key: str, request: ModelRequest, invoke: Invoke) -> ModelResponse: ...


class ModelNotBoundError(RuntimeError):
    """A model was called outside a runledger run: nothing would meter it, so it is not made."""

    code = "model_not_bound"


@dataclass(frozen=True)
class UnmeteredCall:
    """A LiteLLM call made in a run without going through the meter (NO_UNMETERED_MODEL_CALLS)."""

    model: str
    request_hash: str
    #: The n-th unmetered call of this execution: its record's key is ``unmetered:{ordinal}``.
    ordinal: int


UnmeteredSink = Callable[[UnmeteredCall], Awaitable[None]]


class Binding:
    def __init__(
        self, invoke: Gateway, meter: Meter, default_model: str, on_unmetered: UnmeteredSink | None
    ) -> None:
        self.invoke = invoke
        self.meter = meter
        self.default_model = default_model
        self.on_unmetered = on_unmetered
        self.counters: dict[str, int] = {}
        self.unmetered = 0
        try:
            #: The run's event loop: unmetered reports and sync model calls are scheduled on it.
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        self._reports: list[asyncio.Future[None] | concurrent.futures.Future[None]] = []

    def next_key(self, scope: str) -> str:
        """``{node}:{step}.{n}``: the n-th call of that node in that LangGraph super-step (``call:{n}``
        outside a graph). Keyed by step, a run resumed after its last checkpoint does not reuse the
        keys (and so the settled calls) of the steps it no longer runs; the node stays the part
        before the last ``:``."""
        n = self.counters.get(scope, 0)
        self.counters[scope] = n + 1
        node, _, step = scope.partition("@")
        return f"{node}:{step}.{n}" if step else f"{node}:{n}"

    def report(self, model: str, request_hash: str) -> None:
        """Schedule the unmetered call's record on the run's loop (LiteLLM may call its hooks from a
        worker thread); :meth:`drain` waits for it before the execution ends."""
        if self.on_unmetered is None or self.loop is None:
            return
        call = UnmeteredCall(model=model, request_hash=request_hash, ordinal=self.unmetered)
        self.unmetered += 1
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._reports.append(self.loop.create_task(_as_none(self.on_unmetered(call))))
        else:
            self._reports.append(
                asyncio.run_coroutine_threadsafe(_as_none(self.on_unmetered(call)), self.loop)
            )

    async def drain(self) -> None:
        """Wait until every unmetered call reported so far is recorded."""
        await asyncio.sleep(0)  # a report scheduled from a thread becomes a task on this loop
        while self._reports:
            report, *self._reports = self._reports
            await (asyncio.wrap_future(report) if isinstance(report, concurrent.futures.Future) else report)


async def _as_none(value: Awaitable[None]) -> None:
    await value


_binding: ContextVar[Binding | None] = ContextVar("runledger_model_binding", default=None)


@contextmanager
def bind(
    invoke: Gateway, *, default_model: str, meter: Meter, on_unmetered: UnmeteredSink | None = None
) -> Iterator[Binding]:
    binding = Binding(invoke, meter, default_model, on_unmetered)
    token = _binding.set(binding)
    try:
        yield binding
    finally:
        _binding.reset(token)


def _current() -> Binding:
    binding = _binding.get()
    if binding is None:
        raise ModelNotBoundError(
            "runledger.sdk.ChatModel called outside a runledger run: no meter is bound, and a model "
            "call is never made unmetered (run the graph through runledger)"
        )
    return binding


def default_model() -> str:
    """The bound run's model (the graph's ``model`` setting, else ``RUNLEDGER_DEFAULT_MODEL``)."""
    return _current().default_model


def run_loop() -> asyncio.AbstractEventLoop:
    """The event loop the bound run executes on (a sync model call waits for its call there)."""
    loop = _current().loop
    if loop is None:
        raise ModelNotBoundError("the model binding was made outside an event loop")
    return loop


def current_call_scope() -> str:
    """``{node}@{step}``: the LangGraph node and super-step running this call, which makes call keys
    stable across retries (``call`` outside a graph)."""
    try:
        from langgraph.config import get_config

        metadata = get_config().get("metadata", {})
    except RuntimeError:  # called outside a LangGraph run
        return "call"
    node, step = metadata.get("langgraph_node"), metadata.get("langgraph_step")
    if not node:
        return "call"
    return f"{node}@{step}" if step is not None else str(node)


async def call(request: ModelRequest, on_chunk: ChunkSink | None = None) -> ModelResponse:
    """Make one metered model call of the bound run (see the contract)."""
    binding = _current()
    scope = current_call_scope()
    key = binding.next_key(scope)
    node = scope.partition("@")[0]

    async def invoke(req: ModelRequest, on_delta: DeltaSink | None) -> ModelResponse:
        return await binding.invoke(req, on_delta, on_chunk)

    # Every log line of the call (the meter's model_call line included) names its graph node.
    with structlog.contextvars.bound_contextvars(node=node, call_key=key):
        return await binding.meter.call(key, request, invoke)


def report_unmetered(model: Any, messages: Any) -> None:
    """A LiteLLM call that did not come through :func:`call`: an error line always, and a record on
    the run when one is bound."""
    body = json.dumps([str(model), messages], sort_keys=True, default=str)
    request_hash = hashlib.sha256(body.encode()).hexdigest()
    log.error(
        "unmetered_model_call",
        model=str(model),
        request_hash=request_hash,
        hint="call models through runledger.sdk.ChatModel; this call is not billed by the meter",
    )
    binding = _binding.get()
    if binding is not None:
        binding.report(str(model), request_hash)
