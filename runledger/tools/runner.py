"""The tool runner: the one path from graph code to a tool, and the policy that guards it.

Each call — of a built-in ``core__*`` tool (:meth:`ToolRunner.call`) or of a LangChain tool
(:meth:`ToolRunner.run`, through ``runledger.tools.langchain``) — goes lookup → policy → input
validation → (a write tool: its recorded result, if any) → approval (for the graph's ``approval``
tools: the run pauses until a person decides) → ``tool_call_start`` → execute → output validation →
(a write tool: its result recorded) → ``tool_call_result``. A failure at any step returns a failed
:class:`ToolResult` with a stable code (``contracts.tools.ToolErrorCode``) and still emits
``tool_call_result``, so a listener sees every attempt; only a call that passed policy and
validation emits ``tool_call_start``.

The events are the run's view of its tool calls, not the calls themselves: a sink that fails (its
database write raised) is logged and the call goes on, so a failed event write never escapes
the runner (and never fails, or repeats, a tool call that ran).

EXACTLY_ONCE_TOOL_EFFECTS: a write tool (listed in ``write_tools``, or marked ``effect="write"`` in
code) runs under its tool effect key (``contracts.ids.tool_effect_key``), handed to it as its
idempotency key (:func:`current_effect_key`); its result is recorded in the :class:`EffectStore`
before the graph goes on, and a call whose key has a recorded result returns that result instead of
running again. Read tools may run again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import jsonschema
import structlog

from runledger.contracts.ids import tool_effect_key
from runledger.contracts.runs import APPROVAL_KIND
from runledger.contracts.tools import TOOL_CATALOG, ToolEffect, ToolErrorCode, ToolSpec
from runledger.tools.connected import (
    ConnectionMissing,
    ConnectionNeedsReauth,
    CredentialResolver,
    bind_credentials,
)
from runledger.tools.core import REGISTRY, ToolFn, ToolInputError

log = structlog.get_logger(__name__)

#: Receives ``(event, data)`` for ``tool_call_start`` and ``tool_call_result``.
ToolEventSink = Callable[[str, dict[str, Any]], Awaitable[None]]


class ToolObservation(Protocol):
    def record(self, output: Any) -> None: ...


#: Opens the span of one tool execution, ``(tool_id, args)``; its value records the output. An
#: exception from the tool leaves the span through the context manager (marked failed).
ToolTrace = Callable[[str, dict[str, Any]], AbstractContextManager[ToolObservation]]


class _Unobserved:
    def record(self, output: Any) -> None:
        return None


def _untraced(tool_id: str, args: dict[str, Any]) -> AbstractContextManager[ToolObservation]:
    return nullcontext(_Unobserved())


class ToolPolicy(Protocol):
    def allows(self, spec: ToolSpec) -> bool: ...


@dataclass(frozen=True)
class AllowList:
    """Allows exactly the listed tool ids; the empty list allows nothing."""

    tool_ids: frozenset[str]

    def allows(self, spec: ToolSpec) -> bool:
        return spec.tool_id in self.tool_ids


#: The policy of a runner nobody configured: no tool at all.
DENY_ALL = AllowList(frozenset())


@dataclass(frozen=True)
class ToolResult:
    call_id: str
    tool_id: str
    ok: bool
    #: The tool's JSON result (for a write tool: as recorded).
    value: Any = None
    error_code: ToolErrorCode | None = None
    message: str | None = None
    #: A write tool's result answered from its record: the tool did not run again.
    replayed: bool = False


class EffectStore(Protocol):
    """Where write tools' results are kept (Postgres ``tool_effects`` in the worker)."""

    async def recorded(self, effect_key: str) -> Any | None:
        """The recorded result (``{"value": ...}``) under this key, or None."""

    async def record(self, effect_key: str, *, tool_id: str, args: dict[str, Any], value: Any) -> Any:
        """Record the result unless one is recorded already; return the recorded ``value``."""


#: Runs the tool with its effect key; returns its JSON result.
Execute = Callable[[str], Awaitable[Any]]

_effect_key: ContextVar[str | None] = ContextVar("runledger_tool_effect_key", default=None)


def current_effect_key() -> str | None:
    """The tool effect key of the tool call running in this context: a write tool's idempotency
    key (an external API can dedupe the attempt that died between the effect and its record)."""
    return _effect_key.get()


@contextmanager
def _running_under(key: str) -> Iterator[None]:
    token = _effect_key.set(key)
    try:
        yield
    finally:
        _effect_key.reset(token)


async def _no_events(event: str, data: dict[str, Any]) -> None:
    return None


class ToolRunner:
    def __init__(
        self,
        *,
        policy: ToolPolicy = DENY_ALL,
        emit: ToolEventSink = _no_events,
        trace: ToolTrace = _untraced,
        catalog: Mapping[str, ToolSpec] = TOOL_CATALOG,
        registry: Mapping[str, ToolFn] = REGISTRY,
        run_id: str = "local",
        write_tools: frozenset[str] = frozenset(),
        effects: EffectStore | None = None,
        passthrough: tuple[type[BaseException], ...] = (),
        approval: frozenset[str] = frozenset(),
        credentials: CredentialResolver | None = None,
    ) -> None:
        #: Tools that wait for a person's approval before each execution (the graph's ``approval``).
        self._approval = approval
        #: Resolves the run's connections for a tool that declares a ``provider`` (tools.connected).
        self._credentials = credentials
        self._policy = policy
        self._emit = emit
        self._trace = trace
        self._catalog = catalog
        self._registry = registry
        self._run_id = run_id
        #: The graph's ``write_tools`` setting; a tool marked ``effect="write"`` in code is one too.
        self.write_tools = write_tools
        self._effects = effects
        #: Exceptions that are control flow, not failures (LangGraph's interrupts): re-raised.
        self._passthrough = passthrough

    async def call(self, tool_id: str, args: dict[str, Any], *, call_id: str) -> ToolResult:
        """A built-in ``core__*`` tool by id (``runledger.tools.call``)."""
        spec = self._catalog.get(tool_id)
        impl = self._registry.get(tool_id)
        if spec is None or impl is None:
            return await self._failed(
                call_id, tool_id, args, ToolErrorCode.UNAVAILABLE, f"no tool {tool_id!r}"
            )

        async def execute(effect_key: str) -> Any:
            return await impl(args)

        # A catalog tool that acts on the world is a write tool whatever the graph's settings say.
        write = spec.effect == ToolEffect.EXTERNAL_SIDE_EFFECT
        return await self.run(spec, args, call_id=call_id, execute=execute, write=write)

    async def run(
        self, spec: ToolSpec, args: dict[str, Any], *, call_id: str, execute: Execute, write: bool = False
    ) -> ToolResult:
        """One tool call (see the module contract); ``write``: the tool says it is a write tool."""
        tool_id = spec.tool_id
        if not self._policy.allows(spec):
            return await self._failed(
                call_id, tool_id, args, ToolErrorCode.POLICY_DENIED, f"this run may not use {tool_id!r}"
            )
        problem = _schema_problem(spec.input_schema, args)
        if problem is not None:
            return await self._failed(call_id, tool_id, args, ToolErrorCode.INVALID_INPUT, problem)
        key = tool_effect_key(run_id=self._run_id, tool_call_id=call_id)
        once = self._effects is not None and (write or tool_id in self.write_tools)
        if once:
            assert self._effects is not None
            recorded = await self._effects.recorded(key)
            if recorded is not None:
                await self._publish(
                    "tool_call_result",
                    {
                        "call_id": call_id,
                        "tool_id": tool_id,
                        "ok": True,
                        "result": recorded["value"],
                        "replayed": True,
                    },
                )
                return ToolResult(
                    call_id=call_id, tool_id=tool_id, ok=True, value=recorded["value"], replayed=True
                )
        if tool_id in self._approval:
            refusal = _approval(tool_id, args, call_id)
            if refusal is not None:
                return await self._failed(call_id, tool_id, args, ToolErrorCode.APPROVAL_DENIED, refusal)
        effect = ToolEffect.EXTERNAL_SIDE_EFFECT if once else spec.effect
        start: dict[str, Any] = {"call_id": call_id, "tool_id": tool_id, "effect": effect.value, "args": args}
        if once:
            start["effect_key"] = key
        await self._publish("tool_call_start", start)
        try:
            with (
                self._trace(tool_id, args) as observed,
                _running_under(key),
                bind_credentials(self._credentials),
            ):
                value = await execute(key)
                observed.record(value)
        except self._passthrough:
            raise
        except ToolInputError as exc:
            return await self._failed(call_id, tool_id, args, ToolErrorCode.INVALID_INPUT, str(exc))
        except ConnectionMissing as exc:
            return await self._failed(call_id, tool_id, args, ToolErrorCode.CONNECTION_MISSING, str(exc))
        except ConnectionNeedsReauth as exc:
            return await self._failed(call_id, tool_id, args, ToolErrorCode.CONNECTION_NEEDS_REAUTH, str(exc))
        except Exception as exc:
            return await self._failed(
                call_id, tool_id, args, ToolErrorCode.EXECUTION_FAILED, f"{type(exc).__name__}: {exc}"
            )
        problem = _schema_problem(spec.output_schema, value) if spec.output_schema else None
        if problem is not None:
            return await self._failed(call_id, tool_id, args, ToolErrorCode.INVALID_OUTPUT, problem)
        if once:
            assert self._effects is not None
            # Recorded before the graph goes on: a retried or resumed run gets this, not a new effect.
            value = await self._effects.record(key, tool_id=tool_id, args=args, value=value)
        await self._publish(
            "tool_call_result", {"call_id": call_id, "tool_id": tool_id, "ok": True, "result": value}
        )
        return ToolResult(call_id=call_id, tool_id=tool_id, ok=True, value=value)

    async def _publish(self, event: str, data: dict[str, Any]) -> None:
        try:
            await self._emit(event, data)
        except Exception as exc:
            log.warning(
                "tool_event_publish_failed",
                run_event=event,
                call_id=data.get("call_id"),
                tool_id=data.get("tool_id"),
                error=f"{type(exc).__name__}: {exc}",
            )

    async def _failed(
        self, call_id: str, tool_id: str, args: dict[str, Any], code: ToolErrorCode, message: str
    ) -> ToolResult:
        # ``args`` too: a call refused before ``tool_call_start`` is still shown with what it asked.
        await self._publish(
            "tool_call_result",
            {
                "call_id": call_id,
                "tool_id": tool_id,
                "ok": False,
                "args": args,
                "error_code": code.value,
                "message": message,
            },
        )
        return ToolResult(call_id=call_id, tool_id=tool_id, ok=False, error_code=code, message=message)


def _approval(tool_id: str, args: dict[str, Any], call_id: str) -> str | None:
    """Pause the run for a person's decision (LangGraph ``interrupt()``: the run is checkpointed
    and waits ``awaiting_approval``; the node runs again when it is resumed, and this call then
    returns the decision). None when approved, else the refusal the model is given."""
    from langgraph.types import interrupt

    decision = interrupt({"kind": APPROVAL_KIND, "tool_id": tool_id, "args": args, "call_id": call_id})
    if isinstance(decision, dict) and decision.get("approved") is True:
        return None
    reason = decision.get("reason") if isinstance(decision, dict) else None
    return f"a person declined {tool_id!r}" + (f": {reason}" if reason else "")


def _schema_problem(schema: dict[str, Any], value: Any) -> str | None:
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path)
    )
    if not errors:
        return None
    return "; ".join(f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors)
