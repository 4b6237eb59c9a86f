"""Importing a project's code: its folders on the import path, its module names checked against
every module of the process, its graph entries imported as LangGraph does.

Contract:
- The import roots are the folder of ``langgraph.json`` (as ``langgraph dev`` run from there) and
  every local ``dependencies`` entry (a path starting with ``.``, relative to that file); they are
  appended to ``sys.path``.
- Before anything of the project is imported, each top-level module of a root (``name.py``, or a
  folder of ``.py`` files) is checked: a name of runledger's own top-level packages
  (``runledger``, ``workflows``, ``activities``, ``api``, ``db``), or of a module the process already
  has or can import from another file (an installed package, the standard library), is refused with
  one line naming both files. So a project's ``tools.py`` is always the project's, and never
  ours or an installed ``tools``; and the project can never replace one of ours.
- A file entry (``./agent.py:graph``) is imported under its module name when it lies in a root
  (``agent``), so the project's own ``from tools import x`` and the entry share one module object;
  otherwise by path, under a private name. A module entry (``pkg.module:graph``) is imported by name.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from hashlib import sha256
from pathlib import Path
from types import ModuleType

from runledger.projects.errors import ProjectError
from runledger.projects.settings import GraphEntry, Project

#: runledger's own top-level packages (SPEC §1); a project may not bring a module of these names.
OWN_PACKAGES = ("runledger", "workflows", "activities", "api", "db")
#: Folders never searched for project modules or source files.
SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "dist-packages"})


def import_roots(project: Project) -> tuple[Path, ...]:
    base = project.config.parent
    roots = [base]
    for dep in project.local_dependencies:
        path = (base / dep).resolve()
        if not path.is_dir():
            raise ProjectError(project.config, f"{dep!r}: no such folder ({path})", entry="dependencies")
        if path not in roots:
            roots.append(path)
    return tuple(roots)


def _skipped(path: Path) -> bool:
    return path.name.startswith(".") or path.name in SKIPPED_DIRS or (path / "pyvenv.cfg").exists()


def _top_level_modules(root: Path) -> dict[str, Path]:
    """``name -> file`` of the modules importable from ``root``: ``name.py`` and package folders
    (regular, or namespace folders holding ``.py`` files)."""
    found: dict[str, Path] = {}
    for child in sorted(root.iterdir()):
        if child.is_file() and child.suffix == ".py" and child.stem.isidentifier():
            if child.stem not in ("__init__", "__main__"):
                found[child.stem] = child
        elif child.is_dir() and child.name.isidentifier() and not _skipped(child):
            init = child / "__init__.py"
            if init.is_file():
                found[child.name] = init
            elif any(child.glob("*.py")):
                found[child.name] = child
    return found


def _file_of(module: ModuleType) -> Path | None:
    file = getattr(module, "__file__", None)
    if file:
        return Path(file).resolve()
    locations = list(getattr(module, "__path__", []) or [])
    return Path(locations[0]).resolve() if locations else None


def _elsewhere(name: str) -> Path | None:
    """The file another module of this name comes from (already imported, or importable now)."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        return _file_of(loaded) or Path(f"<built-in module {name}>")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.origin and spec.origin not in ("built-in", "frozen", "namespace"):
        return Path(spec.origin).resolve()
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]).resolve() if locations else Path(f"<{spec.origin or 'built-in'} module {name}>")


def _same(project_file: Path, other: Path) -> bool:
    return other == project_file.resolve() or other == project_file.resolve().parent / "__init__.py"


def check_module_names(project: Project, roots: Iterable[Path]) -> None:
    """Refuse a project module whose name another module of the process has (see the contract)."""
    seen: dict[str, Path] = {}
    for root in roots:
        for name, file in _top_level_modules(root).items():
            if name in seen and seen[name] != file:
                raise ProjectError(
                    project.config, f"project modules {name!r} ({seen[name]}) and ({file}) share a name"
                )
            seen[name] = file
            if name in OWN_PACKAGES:
                own = _elsewhere(name) or Path(f"<runledger's {name}>")
                raise ProjectError(
                    project.config,
                    f"project module {name!r} ({file}) has the name of runledger's own package {name!r} "
                    f"({own}); rename it",
                )
            other = _elsewhere(name)
            if other is not None and not _same(file, other):
                raise ProjectError(
                    project.config,
                    f"project module {name!r} ({file}) has the name of another module {name!r} "
                    f"({other}) of this process; rename it",
                )


def add_to_path(roots: Iterable[Path]) -> None:
    for root in roots:
        if str(root) not in sys.path:
            sys.path.append(str(root))


def _dotted_name(file: Path, roots: Iterable[Path]) -> str | None:
    for root in roots:
        try:
            relative = file.relative_to(root)
        except ValueError:
            continue
        parts = [*relative.parent.parts, relative.stem]
        if all(part.isidentifier() for part in parts) and relative.suffix == ".py":
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return None


def _import_file(file: Path) -> ModuleType:
    name = f"runledger_project_{file.stem}_{sha256(str(file).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def import_entry(
    project: Project, roots: tuple[Path, ...], entry: GraphEntry, *, own_packages_allowed: bool = False
) -> ModuleType:
    """The entry's module; ``own_packages_allowed`` only for the built-in graphs."""
    where = f"graphs.{entry.name}"
    file: Path | None = None
    dotted: str | None = entry.module
    if entry.is_file:
        file = (project.config.parent / entry.module).resolve()
        if not file.is_file():
            raise ProjectError(project.config, f"{entry.module}: no such file ({file})", entry=where)
        dotted = _dotted_name(file, roots)
    else:
        if entry.module.endswith(".py"):
            raise ProjectError(
                project.config,
                f"{entry.path!r} is a module name; a file is written ./{entry.path} (a path has a /)",
                entry=where,
            )
        top = entry.module.split(".")[0]
        if top in OWN_PACKAGES and not own_packages_allowed:
            raise ProjectError(
                project.config, f"{entry.module!r} is in runledger's own package {top!r}", entry=where
            )
        if importlib.util.find_spec(top) is None:
            raise ProjectError(project.config, f"no module named {entry.module!r}", entry=where)
    try:
        if dotted is not None:
            return importlib.import_module(dotted)
        assert file is not None
        return _import_file(file)
    except Exception as exc:
        raise ProjectError(
            project.config, f"importing {entry.module} failed: {type(exc).__name__}: {exc}", entry=where
        ) from exc


def source_files(roots: Iterable[Path]) -> list[Path]:
    """Every ``.py`` file of the project (its version hashes them all), in a stable order."""
    files: set[Path] = set()
    pending = list(roots)
    while pending:
        folder = pending.pop()
        for child in folder.iterdir():
            if child.is_dir() and not _skipped(child):
                pending.append(child)
            elif child.is_file() and child.suffix == ".py":
                files.add(child.resolve())
    return sorted(files)
