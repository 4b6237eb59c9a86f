"""Rows the tests write directly, below the API: a run of the built-in poet graph."""

from __future__ import annotations

import uuid
from typing import Any

from db.models import GraphRun
from db.session import Database
from runledger.contracts import ids


def graph_run(account: str, user_id: str, **columns: Any) -> GraphRun:
    """An API run of ``langgraph:poet`` (not yet written); ``columns`` override its defaults."""
    run_id = columns.pop("run_id", None) or str(uuid.uuid4())
    defaults: dict[str, Any] = {
        "run_id": run_id,
        "workflow_id": ids.graph_run_workflow_id(run_id),
        "graph_id": "langgraph:poet",
        "billing_account_id": account,
        "run_kind": "user_immediate",
        "trigger_source": "api",
        "requested_by": user_id,
        "input": {"topic": "x"},
        "trace_id": ids.langfuse_trace_id(run_id),
    }
    return GraphRun(**{**defaults, **columns})


async def insert_run(database: Database, account: str, user_id: str, **columns: Any) -> str:
    """Write :func:`graph_run`'s row (no hold, no event); returns its id."""
    run = graph_run(account, user_id, **columns)
    async with database.transaction() as session:
        session.add(run)
    return run.run_id
