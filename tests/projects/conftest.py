"""Graph projects live in temp dirs; whatever of them a test imported is forgotten afterwards, so the
next test's project may have its own ``tools.py`` again (the loader refuses a module name the process
already has from another file)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client

from db.migrate import upgrade
from db.session import Database
from runledger.config import Settings
from runledger.llm import LiteLLMGateway
from runledger.projects import GraphRegistry
from runledger.worker import WorkerDeps, build_worker, load_graphs, publish_catalog
from tests.conftest import create_database
from tests.fakes.github_server import FakeGitHub


def _from_project(module: object, roots: tuple[Path, ...]) -> bool:
    file = getattr(module, "__file__", None)
    if not file:
        locations = list(getattr(module, "__path__", []) or [])
        file = locations[0] if locations else None
    return file is not None and any(Path(file).resolve().is_relative_to(root) for root in roots)


@pytest.fixture(autouse=True)
def forget_project_imports(tmp_path: Path) -> Iterator[None]:
    path = list(sys.path)
    before = set(sys.modules)
    yield
    roots = (tmp_path.resolve(),)
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        if name.startswith("runledger_project_") or _from_project(module, roots):
            del sys.modules[name]
    sys.path[:] = path


@dataclass
class Fresh:
    """A database of its own (migrated, nothing published yet) and settings on its own task queue:
    the catalog a test publishes is the only one its API sees."""

    settings: Settings
    database: Database


@pytest.fixture
async def fresh(pg_server_url: str, settings: Settings) -> AsyncIterator[Fresh]:
    url = create_database(pg_server_url)
    await asyncio.to_thread(upgrade, url)
    own = settings.model_copy(update={"database_url": url, "temporal_task_queue": f"test-{uuid.uuid4()}"})
    database = Database(url, pool_size=5)
    try:
        yield Fresh(own, database)
    finally:
        await database.dispose()


@asynccontextmanager
async def serving(client: Client, fresh: Fresh, gateway: LiteLLMGateway) -> AsyncIterator[GraphRegistry]:
    """A worker as ``runledger worker`` starts one: its graphs loaded through the settings
    (RUNLEDGER_GRAPHS_CONFIG), the catalog published, then polling."""
    registry = load_graphs(fresh.settings)
    await publish_catalog(fresh.database, registry, fresh.settings.default_model)
    deps = WorkerDeps(database=fresh.database, gateway=gateway, registry=registry)
    async with build_worker(client, fresh.settings, deps):
        yield registry


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    """A local fake of GitHub's API (issue comments, its OAuth token endpoint) for connected tools."""
    fake = FakeGitHub()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
