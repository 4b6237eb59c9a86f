"""Fixtures of the browser tests: one real API server (uvicorn on a loopback port) and one headless
Chromium per module, a fresh browser context (cookie jar) per test.

Chromium is Debian's (``/usr/bin/chromium``, or ``RUNLEDGER_TEST_CHROMIUM``), driven by Playwright
for Python through ``executable_path``: Playwright's own browser download is not used. ``make
browser`` installs it where apt is available, and ``.ci/run`` always does, so CI never skips; on a
machine without it the browser tests skip and say why.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from temporalio.client import Client

from api.app import create_app
from db.session import Database
from runledger.config import Settings
from tests.conftest import _LoopServer
from tests.fakes.loopback import free_port

#: Where the browser tests save screenshots of the main pages (CI keeps them as artifacts; the
#: README shows two of them).
SCREENSHOTS = Path(
    os.environ.get("RUNLEDGER_SCREENSHOTS_DIR", Path(__file__).parents[2] / "docs" / "screenshots")
)


def chromium_path() -> str | None:
    configured = os.environ.get("RUNLEDGER_TEST_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
async def live_url(settings: Settings, database: Database, client: Client) -> AsyncIterator[str]:
    """The real app on a loopback port, for the module's browser."""
    port = free_port()
    app = create_app(settings, database=database, temporal=client)
    server = _LoopServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None)
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 20
    while not server.started:
        if task.done():
            task.result()
            raise AssertionError("uvicorn stopped before it started")
        if time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start within 20s")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=20)
