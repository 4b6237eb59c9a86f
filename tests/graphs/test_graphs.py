"""Graphs are plain LangGraph graphs: they compile, run with an unmetered gateway, and the catalog
describes exactly the graphs that exist."""

from __future__ import annotations

from runledger.contracts.catalog import CATALOG
from runledger.graphs import GRAPHS, OUTPUT_KEYS
from runledger.llm import LiteLLMGateway, bind
from runledger.llm.offline import OFFLINE_MODEL

#: Graphs whose input is not ``{"topic": ...}``.
SAMPLE_INPUTS = {
    "langgraph:chat": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me about lighthouses"},
        ]
    }
}


def test_catalog_and_builders_match() -> None:
    assert set(CATALOG) == set(GRAPHS) == set(OUTPUT_KEYS)
    for graph_id in CATALOG:
        assert graph_id.startswith("langgraph:")


async def test_graphs_run_offline_and_call_the_model_as_declared() -> None:
    gateway = LiteLLMGateway()
    seen: list[str] = []

    class Counting:
        async def call(self, call_key: str, request, invoke):  # type: ignore[no-untyped-def]
            seen.append(call_key)
            return await invoke(request)

    keys: dict[str, list[str]] = {}
    for graph_id, builder in GRAPHS.items():
        seen.clear()
        with bind(gateway.invoke, default_model=OFFLINE_MODEL, meter=Counting()):
            state = await builder().ainvoke(SAMPLE_INPUTS.get(graph_id, {"topic": "lighthouses"}))
        assert set(OUTPUT_KEYS[graph_id]) <= set(state)
        assert len(seen) == CATALOG[graph_id].max_model_calls
        assert len(set(seen)) == len(seen)  # call keys are unique within a run
        keys[graph_id] = list(seen)
    assert keys["langgraph:brief"] == ["outline:0", "draft:0", "review:0"]


async def test_offline_model_is_deterministic() -> None:
    gateway = LiteLLMGateway()
    results = []
    for _ in range(2):
        with bind(gateway.invoke, default_model=OFFLINE_MODEL):
            results.append(await GRAPHS["langgraph:poet"]().ainvoke({"topic": "lighthouses"}))
    assert results[0]["poem"] == results[1]["poem"]
    assert "lighthouses" in results[0]["poem"]
