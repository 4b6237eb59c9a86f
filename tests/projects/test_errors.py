"""A bad graph project fails the worker at start with ONE line naming the file and the entry — never a
partly registered catalog — and a project module never shadows another module, nor is shadowed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runledger.llm import LiteLLMGateway
from runledger.projects import ProjectError, load_registry
from runledger.worker import check_models
from tests.projects.helpers import ECHO_FILES, write_files, write_project

GRAPH = ECHO_FILES["graph.py"]
BASE_FILES = {**ECHO_FILES}


def _config(graphs: dict[str, Any], settings: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "dependencies": ["."],
        "graphs": graphs,
        **({"runledger": {"graphs": settings}} if settings else {}),
        **extra,
    }


CASES: list[tuple[str, dict[str, str], dict[str, Any] | str | None, str]] = [
    ("file missing", {}, None, "{config}: no such file"),
    (
        "bad JSON",
        {},
        '{"graphs": {"my_agent": ',
        "{config}: not valid JSON: Expecting value: line 1 column 25",
    ),
    ("not an object", {}, "[1, 2]", "{config}: the file must hold a JSON object"),
    ("no graphs", {}, {"graphs": {}}, "{config}: graphs: no graphs"),
    ("bad entry shape", BASE_FILES, {"graphs": {"my_agent": 7}}, "{config}: graphs.my_agent: must be"),
    (
        "no attribute part",
        BASE_FILES,
        {"graphs": {"my_agent": "./graph.py"}},
        "{config}: graphs.my_agent: './graph.py' is not",
    ),
    (
        "bad graph name",
        BASE_FILES,
        {"graphs": {"my agent": "./graph.py:graph"}},
        "{config}: graphs.my agent: a graph name is",
    ),
    (
        "path not found",
        BASE_FILES,
        _config({"my_agent": "./missing.py:graph"}),
        "{config}: graphs.my_agent: ./missing.py: no such file ({root}/missing.py)",
    ),
    (
        "module not found",
        BASE_FILES,
        _config({"my_agent": "nopkg_anywhere.mod:graph"}),
        "{config}: graphs.my_agent: no module named 'nopkg_anywhere.mod'",
    ),
    (
        "a file without ./",
        BASE_FILES,
        _config({"my_agent": "graph.py:graph"}),
        "{config}: graphs.my_agent: 'graph.py:graph' is a module name; a file is written ./graph.py:graph",
    ),
    (
        "attribute not found",
        BASE_FILES,
        _config({"my_agent": "./graph.py:nope"}),
        "{config}: graphs.my_agent: ./graph.py has no attribute 'nope'",
    ),
    (
        "import error",
        {**BASE_FILES, "graph.py": "import not_a_module_anywhere\n"},
        _config({"my_agent": "./graph.py:graph"}),
        "{config}: graphs.my_agent: importing ./graph.py failed: ModuleNotFoundError: "
        "No module named 'not_a_module_anywhere'",
    ),
    (
        "exception at import, on one line",
        {**BASE_FILES, "graph.py": 'raise RuntimeError("no API key\\nset OPENAI_API_KEY")\n'},
        _config({"my_agent": "./graph.py:graph"}),
        "{config}: graphs.my_agent: importing ./graph.py failed: RuntimeError: no API key set OPENAI_API_KEY",
    ),
    (
        "syntax error",
        {**BASE_FILES, "graph.py": "def broken(:\n"},
        _config({"my_agent": "./graph.py:graph"}),
        "{config}: graphs.my_agent: importing ./graph.py failed: SyntaxError:",
    ),
    (
        "not a graph",
        {**BASE_FILES, "graph.py": "graph = 42\n"},
        _config({"my_agent": "./graph.py:graph"}),
        "{config}: graphs.my_agent: ./graph.py:graph is a int, not a compiled graph, a StateGraph or a factory",
    ),
    (
        "a function that is not a factory",
        {**BASE_FILES, "graph.py": "def node(state, config, store):\n    return {}\n"},
        _config({"my_agent": "./graph.py:node"}),
        "{config}: graphs.my_agent: ./graph.py:node is a function of 3 required arguments",
    ),
    (
        "a factory that fails",
        {**BASE_FILES, "graph.py": "def make(config):\n    raise ValueError('no key')\n"},
        _config({"my_agent": "./graph.py:make"}),
        "{config}: graphs.my_agent: calling the factory ./graph.py:make failed: ValueError: no key",
    ),
    (
        "a factory that returns no graph",
        {**BASE_FILES, "graph.py": "def make(config):\n    return {'not': 'a graph'}\n"},
        _config({"my_agent": "./graph.py:make"}),
        "{config}: graphs.my_agent: ./graph.py:make: the factory's result is a dict, not a compiled graph",
    ),
    (
        "a built-in graph's name",
        BASE_FILES,
        _config({"poet": "./graph.py:graph"}),
        "{config}: graphs.poet: langgraph:poet is a built-in graph; give this graph another name",
    ),
    (
        "a tool the graph does not have",
        BASE_FILES,
        _config({"my_agent": "./graph.py:graph"}, {"my_agent": {"tools": ["search_web"]}}),
        "{config}: runledger.graphs.my_agent.tools: 'search_web' is not a tool of the graph (its tools: none)",
    ),
    (
        "unknown setting",
        BASE_FILES,
        _config({"my_agent": "./graph.py:graph"}, {"my_agent": {"toolz": ["x"]}}),
        "{config}: runledger.graphs.my_agent.toolz: unknown setting",
    ),
    (
        "unknown runledger key",
        BASE_FILES,
        {**_config({"my_agent": "./graph.py:graph"}), "runledger": {"graph": {}}},
        "{config}: runledger.graph: unknown setting",
    ),
    (
        "a setting of the wrong type",
        BASE_FILES,
        _config({"my_agent": "./graph.py:graph"}, {"my_agent": {"max_model_calls": "3"}}),
        "{config}: runledger.graphs.my_agent.max_model_calls: Input should be a valid integer",
    ),
    (
        "settings of no graph",
        BASE_FILES,
        _config({"my_agent": "./graph.py:graph"}, {"ghost": {}}),
        "{config}: runledger.graphs.ghost: no such graph in graphs",
    ),
    (
        "a write tool not allowed",
        BASE_FILES,
        _config({"my_agent": "./graph.py:graph"}, {"my_agent": {"write_tools": ["refund"]}}),
        "{config}: runledger.graphs.my_agent: Value error, write_tools ['refund'] must also be listed in tools",
    ),
    (
        "an input schema that is not one",
        BASE_FILES,
        _config({"my_agent": "./graph.py:graph"}, {"my_agent": {"input_schema": {"type": "objekt"}}}),
        "{config}: runledger.graphs.my_agent.input_schema: not a valid JSON Schema: 'objekt' is not valid",
    ),
    (
        "a local dependency that is missing",
        BASE_FILES,
        {"dependencies": ["./src"], "graphs": {"my_agent": "./graph.py:graph"}},
        "{config}: dependencies: './src': no such folder ({root}/src)",
    ),
]


@pytest.mark.parametrize(("files", "config", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_config_error_is_one_line_naming_the_file_and_the_entry(
    tmp_path: Path, files: dict[str, str], config: dict[str, Any] | str | None, expected: str
) -> None:
    root = (tmp_path / "proj").resolve()
    path = root / "langgraph.json"
    if config is not None:
        write_project(root, files, config)
    with pytest.raises(ProjectError) as caught:
        load_registry(path)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(expected.format(config=path, root=root)), line


def test_a_second_error_is_not_reached_and_nothing_is_registered(tmp_path: Path) -> None:
    config = write_project(
        tmp_path / "proj",
        {**BASE_FILES, "bad.py": "graph = None\n"},
        _config({"good": "./graph.py:graph", "bad": "./bad.py:graph"}),
    )
    with pytest.raises(ProjectError, match=r"graphs\.bad: "):
        load_registry(config)


@pytest.mark.parametrize(
    ("files", "name", "theirs", "other"),
    [
        ({"db.py": "X = 1\n"}, "db", "db.py", "runledger's own package 'db'"),
        (
            {"workflows/__init__.py": ""},
            "workflows",
            "workflows/__init__.py",
            "runledger's own package 'workflows'",
        ),
        ({"api/routes.py": ""}, "api", "api", "runledger's own package 'api'"),  # a namespace folder
        ({"json.py": ""}, "json", "json.py", "another module 'json'"),  # the standard library, imported
    ],
)
def test_a_project_module_named_like_one_of_ours_or_an_imported_module_is_refused(
    tmp_path: Path, files: dict[str, str], name: str, theirs: str, other: str
) -> None:
    root = (tmp_path / "proj").resolve()
    config = write_project(root, {**BASE_FILES, **files}, _config({"echo": "./graph.py:graph"}))
    ours = sys.modules[name]
    with pytest.raises(ProjectError) as caught:
        load_registry(config)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(f"{config}: project module {name!r} ({root / theirs})"), line
    assert other in line
    # Both modules named by their files; ours is still ours.
    ours_file = getattr(ours, "__file__", None) or next(iter(ours.__path__))
    assert str(Path(ours_file).resolve()) in line
    assert sys.modules[name] is ours


def test_a_project_module_that_another_importable_file_has_is_refused(tmp_path: Path) -> None:
    """Not imported yet, but importable from elsewhere (an installed package would be): one of the two
    would silently be the other."""
    write_files(tmp_path / "site", {"shared_helpers_xyz.py": "WHO = 'installed'\n"})
    sys.path.append(str(tmp_path / "site"))  # restored by the fixture
    config = write_project(
        tmp_path / "proj",
        {**BASE_FILES, "shared_helpers_xyz.py": "WHO = 'project'\n"},
        _config({"echo": "./graph.py:graph"}),
    )
    with pytest.raises(ProjectError) as caught:
        load_registry(config)
    line = str(caught.value)
    assert str((tmp_path / "proj" / "shared_helpers_xyz.py").resolve()) in line
    assert str((tmp_path / "site" / "shared_helpers_xyz.py").resolve()) in line
    assert "shared_helpers_xyz" not in sys.modules


def test_a_module_entry_inside_our_own_packages_is_refused(tmp_path: Path) -> None:
    config = write_project(tmp_path / "proj", {}, {"graphs": {"x": "db.models:graph"}})
    with pytest.raises(ProjectError, match=r"graphs\.x: 'db\.models' is in runledger's own package 'db'"):
        load_registry(config)


def test_runledger_worker_exits_2_with_the_line_before_connecting(tmp_path: Path) -> None:
    config = write_project(
        tmp_path / "proj",
        {**BASE_FILES, "graph.py": "graph = 'nope'\n"},
        _config({"my_agent": "./graph.py:graph"}),
    )
    env = {
        "PATH": "/usr/bin:/bin",
        # Never reached: the project is loaded before anything connects.
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
        "RUNLEDGER_WORKER_METRICS_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "runledger.cli", "worker", "--graphs", str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"runledger worker: {config.resolve()}: graphs.my_agent: ./graph.py:graph is a str, "
        "not a compiled graph, a StateGraph or a factory"
    )


def test_a_graph_model_without_a_price_fails_the_worker_at_start(tmp_path: Path) -> None:
    config = write_project(
        tmp_path / "proj",
        BASE_FILES,
        _config(
            {"my_agent": "./graph.py:graph", "priced": "./graph.py:graph"},
            {"my_agent": {"model": "nowhere/unpriced-model"}, "priced": {"model": "openai/gpt-4o-mini"}},
        ),
    )
    registry = load_registry(config)
    assert registry.graphs["langgraph:priced"].spec.model == "openai/gpt-4o-mini"
    with pytest.raises(ProjectError) as caught:
        check_models(registry, LiteLLMGateway())
    assert str(caught.value) == (
        f"{config.resolve()}: runledger.graphs.my_agent.model: "
        "LiteLLM has no price for model 'nowhere/unpriced-model'; register one"
    )
