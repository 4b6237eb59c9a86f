"""The built-in graphs are plain LangGraph graphs, loaded from runledger/graphs/langgraph.json like a
user's project: they compile once, run with an unmetered gateway, make the model calls their
settings declare and return exactly their outputs."""

from __future__ import annotations

from typing import Any

from langgraph.pregel import Pregel

from runledger.contracts.catalog import BUILTIN_SOURCE
from runledger.llm import Invoke, LiteLLMGateway, ModelRequest, ModelResponse, bind
from runledger.llm.offline import OFFLINE_MODEL
from runledger.projects import builtin_graphs


def _graphs() -> dict[str, Pregel[Any, Any, Any, Any]]:
    graphs = {}
    for loaded in builtin_graphs():
        assert isinstance(loaded.target, Pregel), loaded.spec.graph_id  # compiled once, at load
        graphs[loaded.spec.graph_id] = loaded.target
    return graphs


GRAPHS = _graphs()
SPECS = {loaded.spec.graph_id: loaded.spec for loaded in builtin_graphs()}
#: A run's output is the graph's output schema: unchanged by serving the graphs from langgraph.json.
OUTPUTS = {
    "langgraph:poet": {"poem"},
    "langgraph:brief": {"outline", "draft", "review"},
    "langgraph:chat": {"reply"},
    "langgraph:dated_note": {"note", "written_at"},
    "langgraph:agent": {"messages"},
    "langgraph:careful_agent": {"messages"},
}
#: The ReAct agent holds room for 4 calls; offline it makes 2 (a tool call, then the answer).
CALLS = {"langgraph:agent": 2, "langgraph:careful_agent": 2}

#: Graphs whose input is not ``{"topic": ...}``.
SAMPLE_INPUTS = {
    "langgraph:chat": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me about lighthouses"},
        ]
    },
    "langgraph:agent": {"messages": [{"role": "user", "content": "What do the notes say about the ledger?"}]},
    "langgraph:careful_agent": {"messages": [{"role": "user", "content": "ledger"}]},
}


class _Unmetered:
    async def call(self, call_key: str, request: ModelRequest, invoke: Invoke) -> ModelResponse:
        return await invoke(request, None)


def test_builtin_graphs_are_published_as_builtin() -> None:
    assert set(SPECS) == set(OUTPUTS)
    for spec in SPECS.values():
        assert spec.graph_id.startswith("langgraph:")
        assert spec.source == BUILTIN_SOURCE
        assert len(spec.version) == 16
        assert spec.model is None  # the worker's RUNLEDGER_DEFAULT_MODEL


async def test_graphs_run_offline_and_call_the_model_as_declared() -> None:
    gateway = LiteLLMGateway()
    seen: list[str] = []

    class Counting:
        async def call(self, call_key: str, request, invoke):  # type: ignore[no-untyped-def]
            seen.append(call_key)
            return await invoke(request, None)

    keys: dict[str, list[str]] = {}
    for graph_id, graph in GRAPHS.items():
        seen.clear()
        with bind(gateway.invoke, default_model=OFFLINE_MODEL, meter=Counting()):
            state = await graph.ainvoke(SAMPLE_INPUTS.get(graph_id, {"topic": "lighthouses"}))
        assert set(state) == OUTPUTS[graph_id]
        assert len(seen) == CALLS.get(graph_id, SPECS[graph_id].max_model_calls)
        assert len(set(seen)) == len(seen)  # call keys are unique within a run
        keys[graph_id] = list(seen)
    assert keys["langgraph:brief"] == ["outline:1.0", "draft:2.0", "review:3.0"]
    assert keys["langgraph:agent"] == ["agent:1.0", "agent:3.0"]


async def test_offline_model_is_deterministic() -> None:
    gateway = LiteLLMGateway()
    results = []
    for _ in range(2):
        with bind(gateway.invoke, default_model=OFFLINE_MODEL, meter=_Unmetered()):
            results.append(await GRAPHS["langgraph:poet"].ainvoke({"topic": "lighthouses"}))
    assert results[0]["poem"] == results[1]["poem"]
    assert "lighthouses" in results[0]["poem"]
