"""The built-in graphs: plain LangGraph ``StateGraph``s, served like any project's graphs.

``langgraph.json`` in this folder names them (``langgraph:{name}``) and holds their runledger settings;
the worker loads it with the same loader as a user's project (``runledger.projects``, source
``builtin``). Each module compiles its graph once, as the module attribute ``graph``; a graph's
output is what it returns (its output schema), the rest of its state is working memory.

Contract: graph code calls models only through ``runledger.sdk.ChatModel`` and tools as LangChain
tools or through ``tools.call`` (runledger's ``core__*`` tools), and knows nothing of billing,
Temporal or the database (import-linter: no ``litellm``, ``runledger.llm``, ``db``...). This package imports none
of its modules: importing one is loading that graph.
"""
