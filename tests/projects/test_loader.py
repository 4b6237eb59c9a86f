"""Loading a graph project (SPEC §7): LangGraph's entry forms and targets, a project's own module
names, the allowlist against the graph's tools, input schemas, JSON outputs and versions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from langgraph.pregel import Pregel

import runledger.config
from runledger.contracts.catalog import BUILTIN_SOURCE, DEFAULT_MAX_MODEL_CALLS
from runledger.projects import LoadedGraph, builtin_graphs, graph_tools, json_output, load_registry
from tests.projects.helpers import ECHO_FILES, echo_project, write_files, write_project

ECHO = "langgraph:echo"


def _forget(root: Path) -> None:
    """Drop the project's modules, as a new worker process would start without them."""
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None) or ""
        if file and Path(file).resolve().is_relative_to(root.resolve()):
            del sys.modules[name]


def _only(path: Path, graph_id: str = ECHO) -> LoadedGraph:
    loaded = load_registry(path).get(graph_id)
    assert loaded is not None
    return loaded


async def test_a_project_with_its_own_tools_config_utils_and_graph_modules_loads(tmp_path: Path) -> None:
    config = echo_project(tmp_path / "proj", description="Echoes a shout.")
    registry = load_registry(config)
    # The built-in graphs are served too; the project's graph as langgraph:{name}.
    assert {"langgraph:poet", "langgraph:chat", ECHO} <= set(registry.graphs)
    echo = registry.get(ECHO)
    assert echo is not None
    assert echo.spec.source == str(config.resolve())
    assert echo.spec.description == "Echoes a shout."
    assert echo.spec.max_model_calls == DEFAULT_MAX_MODEL_CALLS
    assert echo.spec.tool_ids == ()  # no tools setting: no tool allowed
    # Their tools.py and config.py, never ours; ours untouched.
    for name in ("tools", "config", "utils", "graph"):
        assert Path(sys.modules[name].__file__ or "").parent == (tmp_path / "proj").resolve(), name
    assert sys.modules["runledger.config"] is runledger.config
    assert Path(runledger.config.__file__ or "").parent.name == "runledger"
    async with echo.open({"configurable": {}}) as graph:
        state = await graph.ainvoke({"text": "hi"})
    assert state["reply"] == "hello HI!"
    assert json_output(state)["messages"][0]["type"] == "ai"


@pytest.mark.parametrize(
    "entry",
    [
        "./graph.py:graph",  # a file, relative to langgraph.json
        "graph:graph",  # a module on a local dependency
        {"path": "./graph.py:builder", "description": "from the GraphDef"},  # an uncompiled StateGraph
    ],
)
def test_entry_forms(tmp_path: Path, entry: str | dict[str, str]) -> None:
    config = write_project(tmp_path / "proj", ECHO_FILES, {"dependencies": ["."], "graphs": {"echo": entry}})
    echo = _only(config)
    assert isinstance(echo.target, Pregel)  # compiled once, at load
    if isinstance(entry, dict):
        assert echo.spec.description == "from the GraphDef"


SOLO = """
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict


    class State(TypedDict, total=False):
        text: str


    builder = StateGraph(State)
    builder.add_node("noop", lambda state: {})
    builder.add_edge(START, "noop")
    builder.add_edge("noop", END)
    graph = builder.compile()
"""


def test_a_file_outside_the_import_path_is_loaded_by_path(tmp_path: Path) -> None:
    write_files(tmp_path / "elsewhere", {"solo.py": SOLO})
    config = write_project(tmp_path / "proj", {}, {"graphs": {"solo": "../elsewhere/solo.py:graph"}})
    solo = _only(config, "langgraph:solo")
    assert isinstance(solo.target, Pregel)
    assert "solo" not in sys.modules  # under a private name, as LangGraph loads a file
    assert any(name.startswith("runledger_project_solo_") for name in sys.modules)


FACTORIES = """
    import contextlib

    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    CALLS: list[dict] = []
    EXITS: list[str] = []


    class State(TypedDict, total=False):
        text: str
        reply: str


    def _graph(tag: str):
        def respond(state: State) -> State:
            return {"reply": tag}

        builder = StateGraph(State)
        builder.add_node("respond", respond)
        builder.add_edge(START, "respond")
        builder.add_edge("respond", END)
        return builder


    def sync_factory(config):
        CALLS.append(config)
        return _graph(config["configurable"].get("thread_id", "catalog")).compile()


    async def async_factory(config):
        CALLS.append(config)
        return _graph("async")


    @contextlib.contextmanager
    def cm_factory(config):
        CALLS.append(config)
        yield _graph("cm").compile()
        EXITS.append("cm")


    @contextlib.asynccontextmanager
    async def acm_factory(config):
        CALLS.append(config)
        yield _graph("acm").compile()
        EXITS.append("acm")


    def no_config_factory():
        CALLS.append({})
        return _graph("none")
"""


@pytest.mark.parametrize(
    ("attribute", "reply", "exits"),
    [
        ("sync_factory", "run-1", []),
        ("async_factory", "async", []),
        ("cm_factory", "cm", ["cm"]),
        ("acm_factory", "acm", ["acm"]),
        ("no_config_factory", "none", []),
    ],
)
async def test_factories_are_called_once_at_start_and_then_per_run(
    tmp_path: Path, attribute: str, reply: str, exits: list[str]
) -> None:
    config = write_project(
        tmp_path / "proj",
        {"factories.py": FACTORIES},
        {"dependencies": ["."], "graphs": {"made": f"./factories.py:{attribute}"}},
    )
    made = _only(config, "langgraph:made")
    module = sys.modules["factories"]
    assert made.is_factory
    assert len(module.CALLS) == 1  # the catalog's call, at start
    assert exits == module.EXITS  # its context is not kept open
    assert made.spec.input_schema["properties"]["text"] == {"title": "Text", "type": "string"}
    run_config: Any = {"configurable": {"thread_id": "run-1"}}
    async with made.open(run_config) as graph:
        state = await graph.ainvoke({"text": "x"}, run_config)
    assert state["reply"] == reply
    assert len(module.CALLS) == 2
    if attribute != "no_config_factory":
        assert [{"configurable": {}}, run_config] == module.CALLS
    assert exits * 2 == module.EXITS


TOOLS = '''
    from langchain_core.tools import tool
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode


    @tool
    def lookup(order_id: str) -> str:
        """Look an order up."""
        return order_id


    @tool
    def refund(order_id: str) -> str:
        """Refund an order."""
        return order_id


    inner = StateGraph(MessagesState)
    inner.add_node("refund_tools", ToolNode([refund]))
    inner.add_edge(START, "refund_tools")
    inner.add_edge("refund_tools", END)

    outer = StateGraph(MessagesState)
    outer.add_node("tools", ToolNode([lookup]))
    outer.add_node("inner", inner.compile())
    outer.add_edge(START, "tools")
    outer.add_edge("tools", "inner")
    outer.add_edge("inner", END)
    graph = outer.compile()
'''


def test_tools_are_found_in_tool_nodes_and_subgraphs_and_the_allowlist_is_kept(tmp_path: Path) -> None:
    config = write_project(
        tmp_path / "proj",
        {"agent.py": TOOLS},
        {
            "graphs": {"my_agent": "./agent.py:graph"},
            "runledger": {
                "graphs": {
                    "my_agent": {
                        "tools": ["lookup", "refund", "core__current_time"],
                        "write_tools": ["refund"],
                        "approval": ["refund"],
                        "max_model_calls": 4,
                        "model": "openai/gpt-4o-mini",
                    }
                }
            },
        },
    )
    agent = _only(config, "langgraph:my_agent")
    assert isinstance(agent.target, Pregel)
    assert set(graph_tools(agent.target)) == {"lookup", "refund"}
    assert agent.spec.tool_ids == ("lookup", "refund", "core__current_time")
    assert agent.spec.write_tools == agent.spec.approval_tools == ("refund",)
    assert (agent.spec.max_model_calls, agent.spec.model) == (4, "openai/gpt-4o-mini")


REACT = """
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langgraph.prebuilt import create_react_agent

    from agent import lookup


    class Model(GenericFakeChatModel):
        def bind_tools(self, tools, **kwargs):
            return self


    graph = create_react_agent(Model(messages=iter([])), [lookup], prompt="Be brief.")
"""


@pytest.mark.parametrize("entry", ["./agent.py:graph", "./react.py:graph"], ids=["MessagesState", "react"])
def test_a_derived_input_schema_accepts_the_messages_the_graph_accepts(tmp_path: Path, entry: str) -> None:
    """pydantic's schema of LangChain messages refuses what LangGraph takes: MessagesState's union
    (as oneOf) refuses an OpenAI-style message, create_react_agent's BaseMessage wants a "type". The
    published schema accepts what add_messages coerces, and still refuses what it does not."""
    config = write_project(
        tmp_path / "proj",
        {"agent.py": TOOLS, "react.py": REACT},
        {
            "dependencies": ["."],
            "graphs": {"my_agent": entry},
            "runledger": {"graphs": {"my_agent": {"tools": ["lookup"]}}},
        },
    )
    schema = _only(config, "langgraph:my_agent").spec.input_schema
    validator = jsonschema.Draft202012Validator(schema)
    for accepted in (
        [{"role": "user", "content": "Where is order 7?"}],
        [{"type": "human", "content": "hi"}],
        ["hi"],
        [["user", "hi"]],
    ):
        assert validator.is_valid({"messages": accepted}), accepted
    for refused in ("hi", [{"role": "user"}], [{"content": "no role"}], [7]):
        assert not validator.is_valid({"messages": refused}), refused
    assert "oneOf" not in str(schema)


def test_without_a_derivable_schema_any_object_is_accepted(tmp_path: Path) -> None:
    # pydantic cannot build a schema of typing.TypedDict before Python 3.12.
    source = ECHO_FILES["graph.py"].replace(
        "from typing_extensions import TypedDict", "from typing import TypedDict"
    )
    config = write_project(
        tmp_path / "proj",
        {**ECHO_FILES, "graph.py": source},
        {"dependencies": ["."], "graphs": {"echo": "./graph.py:graph"}},
    )
    schema = _only(config).spec.input_schema
    if sys.version_info < (3, 12):
        assert schema == {"type": "object"}
    else:
        assert schema["properties"]["text"]["type"] == "string"


def test_json_output_makes_messages_dicts() -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    state = {
        "messages": [
            HumanMessage("hi"),
            AIMessage("", tool_calls=[{"name": "t", "args": {"a": 1}, "id": "c1"}]),
        ],
        "n": 3,
        "when": Path("/x"),
    }
    out = json_output(state)
    assert [m["type"] for m in out["messages"]] == ["human", "ai"]
    assert out["messages"][1]["tool_calls"][0]["args"] == {"a": 1}
    assert out["n"] == 3
    assert out["when"] == "/x"
    assert json_output("just text") == {"output": "just text"}


def test_version_changes_with_source_and_settings_and_only_then(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    config = echo_project(root)
    first = _only(config).spec.version
    _forget(root)
    assert _only(config).spec.version == first  # a restart with nothing changed: the same version
    _forget(root)
    write_files(root, {"utils.py": ECHO_FILES["utils.py"] + "\n# a comment is a change\n"})
    changed_source = _only(config).spec.version
    assert changed_source != first
    _forget(root)
    echo_project(root, description="now described")  # rewrites the files as they were, and the settings
    changed_settings = _only(config).spec.version
    assert changed_settings not in (first, changed_source)
    _forget(root)
    echo_project(root)
    assert _only(config).spec.version == first


def test_builtin_graphs_are_loaded_once_from_their_langgraph_json() -> None:
    assert builtin_graphs() is builtin_graphs()
    registry = load_registry()
    assert registry.project is None
    assert {spec.graph_id for spec in registry.specs} == {loaded.spec.graph_id for loaded in builtin_graphs()}
    assert {spec.source for spec in registry.specs} == {BUILTIN_SOURCE}
