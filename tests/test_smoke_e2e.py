from __future__ import annotations

import httpx
import pytest

from tests.fakes.openai_server import FakeProvider
from tests.helpers import Tenant, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")


async def test_poet_run_succeeds(api: httpx.AsyncClient, user: Tenant, fake_provider: FakeProvider) -> None:
    resp = await start_run(api, user)
    assert resp.status_code == 202, resp.text
    run = await wait_for_run(api, user, resp.json()["run_id"])
    assert run["status"] == "success", run
    assert run["output"]["poem"]
