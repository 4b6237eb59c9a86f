"""What graph code imports from runledger (SPEC §7): the metered chat model and write tools.

- :class:`ChatModel` — the LangChain chat model of graph code; every call is metered (one receipt
  per call) and it refuses to call outside a run.
- :func:`tool` — ``langchain_core.tools.tool`` with ``effect="read" | "write"``: a write tool's
  result is recorded under its tool effect key before the graph goes on, and a retried or resumed
  run gets that result instead of running it again (EXACTLY_ONCE_TOOL_EFFECTS).
- :func:`idempotency_key` — inside a tool, its tool effect key: hand it to the external API.

Plain LangChain tools (``@langchain_core.tools.tool``) work too, in a ``ToolNode`` or
``create_react_agent``; ``write_tools`` in ``langgraph.json`` makes one a write tool.
"""

from runledger.llm import ModelNotBoundError
from runledger.sdk.chat_model import ChatModel
from runledger.sdk.tools import idempotency_key, tool
from runledger.tools.langchain import ToolCallRefused

__all__ = ["ChatModel", "ModelNotBoundError", "ToolCallRefused", "idempotency_key", "tool"]
