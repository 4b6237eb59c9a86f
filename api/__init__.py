"""The HTTP API (SPEC §4): thin routes over db repositories and one Temporal client.

Contract: imports contracts, db and config; never activities, graphs, llm or workflows (runs are
started by workflow type name, so this process never loads LiteLLM or LangGraph).
"""
