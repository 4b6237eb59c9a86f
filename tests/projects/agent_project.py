"""A graph project of ReAct agents for the tool and metering tests: its own ``tools.py`` (a write
tool made with ``runledger.sdk.tool``, a plain LangChain tool made a write tool by ``write_tools``,
a read tool, a tool no graph is allowed) and ``agent.py``. Every tool execution appends a line to a
file beside the project, so a test counts executions across processes (a killed worker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.projects.helpers import write_project

FILES: dict[str, str] = {
    "tools.py": """
        import json
        from pathlib import Path

        from langchain_core.tools import tool as plain_tool
        from runledger.sdk import idempotency_key, tool

        HERE = Path(__file__).parent


        def executed(name: str, **fields: object) -> None:
            with (HERE / "executions.log").open("a") as log:
                log.write(json.dumps({"tool": name, **fields}) + "\\n")


        @tool(effect="write")
        def refund_order(order_id: str) -> dict:
            \"\"\"Refund an order in full.\"\"\"
            executed("refund_order", order_id=order_id, key=idempotency_key())
            return {"refunded": order_id, "idempotency_key": idempotency_key()}


        @plain_tool
        def cancel_order(order_id: str) -> dict:
            \"\"\"Cancel an order (a write tool by the project's write_tools setting).\"\"\"
            executed("cancel_order", order_id=order_id, key=idempotency_key())
            return {"cancelled": order_id}


        @plain_tool
        def lookup_order(order_id: str) -> dict:
            \"\"\"Look an order up.\"\"\"
            executed("lookup_order", order_id=order_id)
            return {"order_id": order_id, "status": "delivered"}


        @plain_tool
        def delete_all_orders(confirm: str) -> str:
            \"\"\"Delete every order.\"\"\"
            executed("delete_all_orders")
            return "deleted"
    """,
    "agent.py": """
        from langchain_litellm import ChatLiteLLM
        from langgraph.graph import END, START, MessagesState, StateGraph
        from langgraph.prebuilt import ToolNode, create_react_agent, tools_condition
        from runledger.sdk import ChatModel

        import os
        from tools import cancel_order, delete_all_orders, lookup_order, refund_order

        refunds = create_react_agent(ChatModel(), tools=[refund_order, lookup_order])
        cancels = create_react_agent(ChatModel(), tools=[cancel_order, lookup_order])
        reckless = create_react_agent(ChatModel(), tools=[delete_all_orders, lookup_order])


        async def sneak(state: MessagesState) -> dict:
            # Bypasses the meter: runledger must notice (NO_UNMETERED_MODEL_CALLS).
            free = ChatLiteLLM(model="openai/gpt-4o-mini", api_base=os.environ["FAKE_PROVIDER_URL"], api_key="sk-fake")
            await free.ainvoke(state["messages"])
            return {"messages": [await ChatModel().ainvoke(state["messages"])]}


        builder = StateGraph(MessagesState)
        builder.add_node("sneak", sneak)
        builder.add_edge(START, "sneak")
        builder.add_edge("sneak", END)
        sneaky = builder.compile()


        async def refund_then_confirm(state: MessagesState) -> dict:
            # The write tool and the model call after it are one step: a failure of the call re-runs
            # the step, and the tool must answer from its record instead of refunding again.
            refund = await refund_order.ainvoke({"order_id": "A-1001"})
            answer = await ChatModel().ainvoke([*state["messages"], ("user", f"Refund done: {refund}")])
            return {"messages": [answer]}


        builder = StateGraph(MessagesState)
        builder.add_node("refund", refund_then_confirm)
        # The allowlist names a graph's ToolNode tools: this one lists refund_order for the catalog.
        builder.add_node("tools", ToolNode([refund_order]))
        builder.add_edge(START, "refund")
        builder.add_conditional_edges("refund", tools_condition)
        builder.add_edge("tools", END)
        one_step = builder.compile()
    """,
}

ALLOWED = ["refund_order", "cancel_order", "lookup_order"]


def agent_project(root: Path) -> Path:
    config: dict[str, Any] = {
        "dependencies": ["."],
        "graphs": {
            "refunds": "./agent.py:refunds",
            "cancels": "./agent.py:cancels",
            "reckless": "./agent.py:reckless",
            "sneaky": "./agent.py:sneaky",
            "one_step": "./agent.py:one_step",
        },
        "runledger": {
            "graphs": {
                "refunds": {"tools": ["refund_order", "lookup_order"], "max_model_calls": 4},
                "cancels": {
                    "tools": ["cancel_order", "lookup_order"],
                    "write_tools": ["cancel_order"],
                    "max_model_calls": 4,
                },
                # delete_all_orders is the graph's tool, but not allowed: the model may ask for it.
                "reckless": {"tools": ["lookup_order"], "max_model_calls": 4},
                "sneaky": {"max_model_calls": 2},
                "one_step": {"tools": ["refund_order"], "max_model_calls": 1},
            }
        },
    }
    return write_project(root, FILES, config)


def executions(root: Path) -> list[dict[str, Any]]:
    import json

    log = root / "executions.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]
