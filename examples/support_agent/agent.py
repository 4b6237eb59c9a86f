"""A LangGraph ReAct agent, as it would run on LangGraph Platform, served by runledger as
``langgraph:support_agent``. The one runledger-specific line is the model: ``ChatModel`` is a LangChain
chat model whose every call goes through runledger's meter (one receipt per call); any LiteLLM model
string works, and with none it is the graph's ``model`` setting or ``RUNLEDGER_DEFAULT_MODEL``.
"""

from __future__ import annotations

from config import MAX_ANSWER_TOKENS, SYSTEM_PROMPT
from langgraph.prebuilt import create_react_agent
from tools import lookup_order, refund_order

from runledger.sdk import ChatModel

graph = create_react_agent(
    ChatModel(max_tokens=MAX_ANSWER_TOKENS),
    tools=[lookup_order, refund_order],
    prompt=SYSTEM_PROMPT,
)
