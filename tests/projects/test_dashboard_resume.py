"""The run detail's resume and approval actions on a project graph that pauses (``interrupt()``
and a tool under ``approval``), on a database and worker of its own: the page shows what the run
asks and sends the operator's answer through the same resume as ``POST /api/v1/runs/{id}/resume``."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client

from runledger.llm import LiteLLMGateway
from tests.conftest import api_client
from tests.helpers import create_user, start_run, wait_for_run
from tests.projects.conftest import Fresh, serving
from tests.projects.test_human_in_the_loop import _paused, _project, _served
from tests.ui.helpers import csrf_of, sign_in


async def test_the_detail_page_answers_an_interrupt_and_decides_an_approval(
    tmp_path: Path, fresh: Fresh, client: Client, gateway: LiteLLMGateway
) -> None:
    fresh = _served(fresh, _project(tmp_path / "proj"))
    async with api_client(fresh.settings, fresh.database, client) as api:
        user = await create_user(api, credits=1_000_000)
        async with serving(client, fresh, gateway):
            asking = (
                await start_run(api, user, "langgraph:ask", {"input": {"question": "your name?"}})
            ).json()
            guarded = (await start_run(api, user, "langgraph:guarded", {"input": {"zone": "UTC"}})).json()
            assert (await _paused(api, user, asking["run_id"]))["pause_reason"] == "awaiting_input"
            assert (await _paused(api, user, guarded["run_id"]))["pause_reason"] == "awaiting_approval"

            await sign_in(api, user.api_key)
            page = await api.get(f"/ui/runs/{asking['run_id']}")
            assert 'id="resume-form"' in page.text
            assert "your name?" in page.text.split('id="pending-input">')[1]
            sent = await api.post(
                f"/ui/runs/{asking['run_id']}/resume",
                data={"csrf_token": csrf_of(page.text), "value": "Grace"},
            )
            assert sent.status_code == 303
            done = await wait_for_run(api, user, asking["run_id"], within=60)
            assert done["status"] == "success", done
            assert done["output"]["answer"] == "hello Grace"  # plain text, sent as the string
            again = await api.post(
                f"/ui/runs/{asking['run_id']}/resume", data={"csrf_token": csrf_of(page.text), "value": "Ada"}
            )
            assert again.status_code == 409
            assert "run_not_paused" in again.text

            page = await api.get(f"/ui/runs/{guarded['run_id']}")
            assert 'id="approval-form"' in page.text
            denied = await api.post(
                f"/ui/runs/{guarded['run_id']}/resume",
                data={"csrf_token": csrf_of(page.text), "approved": "false", "reason": "not now"},
            )
            assert denied.status_code == 303
            refused = await wait_for_run(api, user, guarded["run_id"], within=60)
        assert refused["output"]["result"]["ok"] is False
        assert refused["output"]["result"]["code"] == "tool_approval_denied"
