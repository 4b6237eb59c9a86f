"""``runledger.sdk.tool``: LangChain's ``@tool`` for functions, with the effect runledger needs.

The result is a :class:`~runledger.tools.langchain.RunledgerTool` (a ``StructuredTool``): every
execution, by a ``ToolNode`` or by graph code, passes the run's tool runner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, overload

from runledger.tools import current_effect_key
from runledger.tools.langchain import Effect, RunledgerTool


@overload
def tool(func: Callable[..., Any], /) -> RunledgerTool: ...


@overload
def tool(
    *, effect: Effect = "read", name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], RunledgerTool]: ...


def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    effect: Effect = "read",
    name: str | None = None,
    description: str | None = None,
) -> RunledgerTool | Callable[[Callable[..., Any]], RunledgerTool]:
    """``@tool`` or ``@tool(effect="write")`` on a sync or async function (its docstring is the
    description, its signature the arguments' schema, as with LangChain's ``@tool``)."""
    if effect not in ("read", "write"):
        raise ValueError(f'effect must be "read" or "write", not {effect!r}')

    def make(fn: Callable[..., Any]) -> RunledgerTool:
        is_async = _is_coroutine(fn)
        made = RunledgerTool.from_function(
            func=None if is_async else fn,
            coroutine=fn if is_async else None,
            name=name or fn.__name__,
            description=description,
        )
        assert isinstance(made, RunledgerTool)
        made.effect = effect
        return made

    return make(func) if func is not None else make


def _is_coroutine(fn: Callable[..., Any]) -> bool:
    import inspect

    return inspect.iscoroutinefunction(fn)


def idempotency_key() -> str:
    """The tool effect key of the running tool call (``{run_id}/{tool_call_id}``): the same on every
    retry of the call, so an external API that dedupes on it applies the effect once."""
    key = current_effect_key()
    if key is None:
        raise RuntimeError("idempotency_key() is only known inside a tool call of a runledger run")
    return key
