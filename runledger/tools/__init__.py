"""Tools a graph may call, through one runner that enforces the run's allowlist.

Contract: graph code calls ``await tools.call(tool_id, args)`` for runledger's own ``core__*`` tools
and gets a :class:`ToolResult` — never an exception for a refused or failed tool, so a graph can
carry on without it. LangChain tools (a ``ToolNode``'s, ``runledger.sdk.tool``'s) pass the same
runner through ``runledger.tools.langchain``. The worker binds a runner whose policy allows exactly
the graph's declared ``tool_ids``; with nothing bound, every tool is denied (DENY_BY_DEFAULT_TOOLS).
Write tools' results are recorded once (EXACTLY_ONCE_TOOL_EFFECTS). Built-in tools take no secrets
and read no settings.
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
