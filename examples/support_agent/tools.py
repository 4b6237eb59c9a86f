"""The agent's tools: ordinary LangChain tools. This project's ``tools`` module, not runledger's.

``lookup_order`` only reads, so a retried run may call it again. ``refund_order`` changes the world,
so it is a write tool (``runledger.sdk.tool(effect="write")``, and ``write_tools`` in langgraph.json):
runledger records its result under the run's tool effect key before the agent goes on, and a retried
or resumed run gets that recorded result instead of refunding twice.
"""

from __future__ import annotations

from config import ORDERS
from langchain_core.tools import tool as read_tool

from runledger.sdk import tool


@read_tool
def lookup_order(order_id: str) -> dict[str, object]:
    """Look an order up by its id, e.g. A-1001: its status, condition and total."""
    order = ORDERS.get(order_id)
    return {"order_id": order_id, "found": order is not None, **(order or {})}


@tool(effect="write")
def refund_order(order_id: str, reason: str) -> dict[str, object]:
    """Refund an order in full. Only for an order that arrived damaged."""
    order = ORDERS.get(order_id)
    if order is None:
        return {"order_id": order_id, "refunded": False, "reason": "no such order"}
    return {"order_id": order_id, "refunded": True, "amount_cents": order["total_cents"], "reason": reason}
