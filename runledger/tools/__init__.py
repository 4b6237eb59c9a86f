"""Tools a graph may call, through one runner that enforces the run's allowlist.

Contract: graph code calls ``await tools.call(tool_id, args)`` for runledger's own tools and gets a
:class:`ToolResult` — never an exception for a refused or failed tool, so a graph can carry on
without it. LangChain tools (a ``ToolNode``'s, ``runledger.sdk.tool``'s) pass the same runner
through ``runledger.tools.langchain``. The worker binds a runner whose policy allows exactly the
graph's declared ``tool_ids``; with nothing bound, every tool is denied (DENY_BY_DEFAULT_TOOLS).
Write tools' results are recorded once (EXACTLY_ONCE_TOOL_EFFECTS). Tools take no secrets in their
arguments and read no settings: a tool that acts on an external service declares its ``provider``
and asks the runner's bound resolver for the run's credential when it executes
(:mod:`runledger.tools.connected`).
"""

from runledger.tools.context import bind, call
from runledger.tools.runner import (
    DENY_ALL,
    AllowList,
    EffectStore,
    ToolEventSink,
    ToolObservation,
    ToolPolicy,
    ToolResult,
    ToolRunner,
    ToolTrace,
    current_effect_key,
)

__all__ = [
    "DENY_ALL",
    "AllowList",
    "EffectStore",
    "ToolEventSink",
    "ToolObservation",
    "ToolPolicy",
    "ToolResult",
    "ToolRunner",
    "ToolTrace",
    "bind",
    "call",
    "current_effect_key",
]
