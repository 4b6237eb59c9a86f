"""The dashboard in a real browser (Playwright for Python driving Debian's Chromium), against the
real API server, worker, Postgres and Temporal; the model provider is the suite's fake. One browser
for the module, one context (cookie jar) per test. Screenshots of the main pages are saved under
``docs/screenshots/`` (``RUNLEDGER_SCREENSHOTS_DIR``)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from runledger.config import Settings
from tests.fakes.openai_server import FakeProvider
from tests.helpers import ADMIN_TOKEN, Tenant, create_user, eventually, start_run, wait_for_run
from tests.ui.conftest import SCREENSHOTS, chromium_path

CHROMIUM = chromium_path()
if CHROMIUM is None and os.environ.get("RUNLEDGER_REQUIRE_BROWSER"):
    # CI (.ci/run) installs Chromium: there, a missing browser is a failure, never a skip.
    raise RuntimeError("RUNLEDGER_REQUIRE_BROWSER is set but no Chromium was found at /usr/bin/chromium")
pytestmark = [
    pytest.mark.usefixtures("worker"),
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no Chromium at /usr/bin/chromium (or RUNLEDGER_TEST_CHROMIUM): run `make browser` "
        "(apt-get install chromium) to run the dashboard's browser tests",
    ),
]
WAIT_MS = 60_000


@pytest.fixture(scope="module")
async def browser(live_url: str) -> AsyncIterator[Browser]:
    assert CHROMIUM is not None
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions"],
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def context(browser: Browser, live_url: str) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(base_url=live_url, viewport={"width": 1360, "height": 900})
    ctx.set_default_timeout(WAIT_MS)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    """A tab whose console is watched: a Content-Security-Policy violation (an inline script or
    style, a foreign origin) fails the test that caused it."""
    opened = await context.new_page()
    refused: list[str] = []
    opened.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
    )
    yield opened
    assert not refused, refused


async def sign_in(page: Page, key: str) -> None:
    await page.goto("/ui/login")
    await page.fill("#api_key", key)
    await page.click("#sign-in")
    await expect(page).to_have_url(re.compile(r"/ui/runs$"))


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def gate(fake_provider: FakeProvider) -> Iterator[threading.Event]:
    """Holds every model call at the fake provider until set: runs stay ``running``."""
    held = threading.Event()
    fake_provider.log.gate = held
    try:
        yield held
    finally:
        fake_provider.log.gate = None
        held.set()


async def test_sign_in_and_sign_out(page: Page, user: Tenant) -> None:
    await page.goto("/ui/runs")
    await expect(page).to_have_url(re.compile(r"/ui/login\?next=/ui/runs"))
    await shot(page, "login")
    await sign_in(page, user.api_key)
    await expect(page.locator("#who")).to_have_text(f"user {user.user_id[:8]}")
    await page.click("#sign-out")
    await expect(page).to_have_url(re.compile(r"/ui/login$"))
    await page.goto("/ui/runs")
    await expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    await page.fill("#api_key", "rl_wrong")
    await page.click("#sign-in")
    await expect(page.locator("#login-error")).to_be_visible()


async def test_a_user_sees_only_their_runs_and_another_users_run_is_404(
    page: Page, api: httpx.AsyncClient
) -> None:
    mine_user = await create_user(api, credits=1_000_000, name="mine")
    other = await create_user(api, credits=1_000_000, name="theirs")
    mine = (await start_run(api, mine_user)).json()["run_id"]
    theirs = (await start_run(api, other)).json()["run_id"]
    await wait_for_run(api, mine_user, mine)
    await sign_in(page, mine_user.api_key)
    await expect(page.locator(f'tr[data-run-id="{mine}"]')).to_have_count(1)
    await expect(page.locator(f'tr[data-run-id="{theirs}"]')).to_have_count(0)
    response = await page.goto(f"/ui/runs/{theirs}")
    assert response is not None
    assert response.status == 404
    await expect(page.locator("h1")).to_have_text("Not found")
    await expect(page.locator(".error-code")).to_have_text("run_not_found")


async def test_filters_narrow_the_list_and_live_in_the_url(page: Page, api: httpx.AsyncClient) -> None:
    tenant = await create_user(api, credits=2_000_000, name="filters")
    first = (await start_run(api, tenant)).json()["run_id"]
    await wait_for_run(api, tenant, first)
    replay = (await api.post(f"/api/v1/runs/{first}/replay", headers=tenant.headers)).json()["run_id"]
    await wait_for_run(api, tenant, replay)
    await sign_in(page, tenant.api_key)
    await expect(page.locator("#runs-table tbody tr")).to_have_count(2)
    await page.select_option("#f-kind", "replay")
    await page.click("#apply-filters")
    await expect(page).to_have_url(re.compile(r"run_kind=replay"))
    await expect(page.locator("#runs-table tbody tr")).to_have_count(1)
    await expect(page.locator(f'tr[data-run-id="{replay}"]')).to_have_count(1)
    shared = page.url
    await page.goto("/ui/runs")
    await page.goto(shared)  # a shared link opens the same view
    await expect(page.locator(f'tr[data-run-id="{replay}"]')).to_have_count(1)
    await page.fill("#f-cost-min", "999999999")
    await page.click("#apply-filters")
    await expect(page.locator("#no-runs")).to_be_visible()


async def test_a_running_runs_detail_page_goes_live_to_success_without_a_reload(
    page: Page, api: httpx.AsyncClient, user: Tenant, gate: threading.Event, fake_provider: FakeProvider
) -> None:
    run_id = (await start_run(api, user)).json()["run_id"]
    await _until_running(api, user, run_id)
    await eventually(lambda: _waiting(fake_provider), until=lambda n: n >= 1, within=60)
    await sign_in(page, user.api_key)
    await page.goto(f"/ui/runs/{run_id}")
    await expect(page.locator("#run-status")).to_have_text("running")
    await page.evaluate("window.__notReloaded = true")
    await shot(page, "run-detail-running")
    gate.set()
    await expect(page.locator("#run-status")).to_have_text("success", timeout=WAIT_MS)
    assert await page.evaluate("window.__notReloaded === true")  # the same document: no reload
    await expect(page.locator("#timeline tr.ev-model_call")).to_have_count(1)
    await expect(page.locator("#timeline tr.ev-done")).to_have_count(1)
    await page.reload()
    await expect(page.locator("#receipts tbody tr")).to_have_count(1)
    await shot(page, "run-detail")


async def test_replay_shows_the_estimate_and_creates_a_linked_run(
    page: Page, api: httpx.AsyncClient, user: Tenant, settings: Settings
) -> None:
    original = (await start_run(api, user)).json()["run_id"]
    await wait_for_run(api, user, original)
    # The page shows the API's own dry-run estimate (the run-start preflight's pricing).
    dry = await api.post(f"/api/v1/runs/{original}/replay", json={"dry_run": True}, headers=user.headers)
    expected = dry.json()["estimated_credits"]
    assert expected > 0
    await sign_in(page, user.api_key)
    await page.goto(f"/ui/runs/{original}")
    await page.click("#replay-run")
    await expect(page.locator("#replay-estimate")).to_have_text(f"{expected:,}")
    await page.click("#confirm-replay")
    await expect(page.locator("#notice")).to_contain_text("Replay started")
    await expect(page.locator("#replay-of")).to_have_text(original[:8])
    new_id = page.url.split("/ui/runs/")[1].split("?")[0]
    detail = (await api.get(f"/api/v1/runs/{new_id}", headers=user.headers)).json()
    assert detail["replay_of"] == original
    assert detail["run_kind"] == "replay"


async def test_bulk_cancel_of_a_filtered_set(
    page: Page, api: httpx.AsyncClient, gate: threading.Event, fake_provider: FakeProvider
) -> None:
    tenant = await create_user(api, credits=3_000_000, name="bulk-cancel")
    done = (await start_run(api, tenant)).json()["run_id"]
    gate.set()
    await wait_for_run(api, tenant, done)
    gate.clear()
    held = [(await start_run(api, tenant)).json()["run_id"] for _ in range(3)]
    for run_id in held:
        await _until_running(api, tenant, run_id)
    await sign_in(page, tenant.api_key)
    await page.select_option("#f-status", "running")
    await page.click("#apply-filters")
    await expect(page.locator("#runs-table tbody tr")).to_have_count(3)
    await shot(page, "runs")
    await page.click("#cancel-filter")
    await expect(page.locator("#bulk-count")).to_have_text("3")
    await expect(page.locator("#bulk-estimate")).to_have_text("0")
    await page.click("#confirm-bulk")
    await expect(page.locator("#bulk-status")).to_have_text("done", timeout=WAIT_MS)
    await expect(page.locator("#bulk-items td.o-cancelled")).to_have_count(3)
    await shot(page, "bulk-progress")
    for run_id in held:
        assert (await wait_for_run(api, tenant, run_id, within=90))["status"] == "cancelled"
    assert (await _status(api, tenant, done)) == "success"  # outside the filter: untouched


async def test_a_form_without_its_csrf_token_is_refused_403(
    page: Page, api: httpx.AsyncClient, user: Tenant
) -> None:
    run_id = (await start_run(api, user)).json()["run_id"]
    await wait_for_run(api, user, run_id)
    await sign_in(page, user.api_key)
    await page.goto(f"/ui/runs/{run_id}/replay")
    await page.evaluate("document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())")
    async with page.expect_response(lambda r: r.url.endswith(f"/ui/runs/{run_id}/replay")) as answer:
        await page.click("#confirm-replay")
    assert (await answer.value).status == 403
    await expect(page.locator(".error-code")).to_have_text("csrf_token_invalid")
    listed = (await api.get("/api/v1/runs?run_kind=replay", headers=user.headers)).json()["runs"]
    assert run_id not in [r["replay_of"] for r in listed]


async def test_admin_sees_every_account_and_filters_by_one(page: Page, api: httpx.AsyncClient) -> None:
    alpha = await create_user(api, credits=1_000_000, name="alpha-admin-view")
    beta = await create_user(api, credits=1_000_000, name="beta-admin-view")
    a = (await start_run(api, alpha)).json()["run_id"]
    b = (await start_run(api, beta)).json()["run_id"]
    await wait_for_run(api, alpha, a)
    await wait_for_run(api, beta, b)
    await sign_in(page, ADMIN_TOKEN)
    await expect(page.locator("#who")).to_have_text("admin · every account")
    await expect(page.locator(f'tr[data-run-id="{a}"]')).to_have_count(1)
    await expect(page.locator(f'tr[data-run-id="{b}"]')).to_have_count(1)
    await expect(page.locator("#runs-table th", has_text="Account")).to_have_count(1)
    await page.select_option("#f-account", alpha.billing_account_id)
    await page.click("#apply-filters")
    await expect(page.locator(f'tr[data-run-id="{a}"]')).to_have_count(1)
    await expect(page.locator(f'tr[data-run-id="{b}"]')).to_have_count(0)
    await expect(page.locator(f'tr[data-run-id="{a}"] td.account')).to_have_text(alpha.billing_account_id[:8])
    await page.goto("/ui/billing")
    await expect(page.locator("#chart-daily")).to_be_visible()
    await shot(page, "billing")


async def _status(api: httpx.AsyncClient, user: Tenant, run_id: str) -> str:
    status: str = (await api.get(f"/api/v1/runs/{run_id}", headers=user.headers)).json()["status"]
    return status


async def _waiting(provider: FakeProvider) -> int:
    with provider.log.lock:
        return provider.log.waiting


async def _until_running(api: httpx.AsyncClient, user: Tenant, run_id: str) -> None:
    await eventually(lambda: _status(api, user, run_id), until=lambda s: s == "running", within=60)
