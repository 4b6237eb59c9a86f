"""The dashboard over plain HTTP (the real app over ASGI): sign-in and sessions, CSRF on every
state-changing route, tenant isolation, security headers, the explorer's filters and counts, and
a replay's estimate. The browser tests (tests/ui/test_browser.py) drive the same pages in Chromium."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi.routing import APIRoute
from temporalio.client import Client

from api import ui
from api.app import create_app
from db.session import Database
from runledger.config import Settings
from tests.db.queries import scalar
from tests.helpers import ADMIN_TOKEN, Tenant, create_user, start_run, wait_for_run
from tests.ui.helpers import csrf_of, sign_in

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
async def browser_like(
    settings: Settings, database: Database, client: Client
) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh client with its own cookie jar, over the real app."""
    app = create_app(settings, database=database, temporal=client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://runledger.test", timeout=30
        ) as http:
            yield http


async def test_sign_in_sets_a_hardened_session_cookie_stored_only_as_a_hash(
    browser_like: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    resp = await sign_in(browser_like, user.api_key)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/ui/runs"
    cookie = next(c for c in resp.headers.get_list("set-cookie") if c.startswith("runledger_session="))
    lowered = cookie.lower()
    assert "httponly" in lowered
    assert "samesite=lax" in lowered
    assert "path=/ui" in lowered
    assert "secure" not in lowered  # plain http here; https adds Secure
    token = cookie.split(";")[0].split("=", 1)[1]
    stored = await scalar(
        database,
        "SELECT count(*) FROM ui_sessions WHERE token_hash = :h",
        h=hashlib.sha256(token.encode()).hexdigest(),
    )
    assert stored == 1
    assert await scalar(database, "SELECT count(*) FROM ui_sessions WHERE token_hash = :t", t=token) == 0
    page = await browser_like.get("/ui/runs")
    assert page.status_code == 200
    assert f"user {user.user_id[:8]}" in page.text


async def test_pages_need_a_session_and_a_bad_key_is_refused(browser_like: httpx.AsyncClient) -> None:
    resp = await browser_like.get("/ui/runs?status=success")
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/ui/login?next=/ui/runs")
    bad = await sign_in(browser_like, "rl_not-a-key")
    assert bad.status_code == 401
    assert "not a valid API key" in bad.text
    assert "runledger_session" not in browser_like.cookies


async def test_session_expires_server_side_and_sign_out_ends_it(
    browser_like: httpx.AsyncClient, user: Tenant, database: Database
) -> None:
    await sign_in(browser_like, user.api_key)
    page = await browser_like.get("/ui/runs")
    out = await browser_like.post("/ui/logout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303
    assert out.headers["location"] == "/ui/login"
    assert (await browser_like.get("/ui/runs")).status_code == 303
    # A session row past its expiry no longer signs anyone in, whatever the browser still holds.
    await sign_in(browser_like, user.api_key)
    token = browser_like.cookies["runledger_session"]
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    await scalar(
        database,
        "UPDATE ui_sessions SET expires_at = now() - interval '1 second' WHERE token_hash = :h RETURNING 1",
        h=token_hash,
    )
    assert (await browser_like.get("/ui/runs")).status_code == 303


async def test_a_revoked_key_ends_its_sessions(
    browser_like: httpx.AsyncClient, api: httpx.AsyncClient, database: Database
) -> None:
    someone = await create_user(api, name="revoked")
    await sign_in(browser_like, someone.api_key)
    assert (await browser_like.get("/ui/runs")).status_code == 200
    await scalar(
        database, "UPDATE api_keys SET revoked_at = now() WHERE user_id = :u RETURNING 1", u=someone.user_id
    )
    assert (await browser_like.get("/ui/runs")).status_code == 303


def _state_changing_ui_routes() -> list[str]:
    """Every POST of every dashboard router (what ``api.ui.install`` adds to the app)."""
    return sorted(
        r.path
        for router in ui.ROUTERS
        for r in router.routes
        if isinstance(r, APIRoute)
        and r.path.startswith("/ui")
        and (r.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}
    )


async def test_every_state_changing_form_is_refused_403_without_its_csrf_token(
    browser_like: httpx.AsyncClient, user: Tenant, api: httpx.AsyncClient, database: Database
) -> None:
    run_id = (await start_run(api, user)).json()["run_id"]
    await wait_for_run(api, user, run_id)
    await sign_in(browser_like, user.api_key)
    routes = _state_changing_ui_routes()
    assert {"/ui/logout", "/ui/runs/{run_id}/cancel", "/ui/runs/{run_id}/replay", "/ui/login"} <= set(routes)
    runs_before = await scalar(
        database, "SELECT count(*) FROM graph_runs WHERE billing_account_id = :a", a=user.billing_account_id
    )
    for path in routes:
        url = (
            path.replace("{run_id}", run_id)
            .replace("{schedule_id}", run_id)
            .replace("{operation_id}", run_id)
        )
        for data in ({}, {"csrf_token": "forged"}):
            resp = await browser_like.post(url, data=data)
            assert resp.status_code == 403, (url, resp.status_code, resp.text[:200])
            assert "csrf_token_invalid" in resp.text
    after = await scalar(
        database, "SELECT count(*) FROM graph_runs WHERE billing_account_id = :a", a=user.billing_account_id
    )
    assert after == runs_before  # nothing was replayed
    assert (await browser_like.get("/ui/runs")).status_code == 200  # and the session still stands


async def test_another_tenants_run_is_a_404_page_and_headers_are_strict(
    browser_like: httpx.AsyncClient, api: httpx.AsyncClient, user: Tenant
) -> None:
    other = await create_user(api, credits=1_000_000, name="other")
    theirs = (await start_run(api, other)).json()["run_id"]
    await sign_in(browser_like, user.api_key)
    for path in (
        f"/ui/runs/{theirs}",
        f"/ui/runs/{theirs}/replay",
        f"/ui/runs/{theirs}/events",
        "/ui/runs/not-a-uuid",
    ):
        resp = await browser_like.get(path)
        assert resp.status_code == 404, path
        assert "run_not_found" in resp.text
        assert "text/html" in resp.headers["content-type"]
    listing = await browser_like.get("/ui/runs")
    assert theirs not in listing.text
    csp = listing.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert listing.headers["x-frame-options"] == "DENY"
    static = await browser_like.get("/ui/static/app.js")
    assert static.status_code == 200
    assert "EventSource" in static.text
    # The JSON API keeps its envelope.
    assert (await api.get(f"/api/v1/runs/{theirs}", headers=user.headers)).json()["error"][
        "code"
    ] == "run_not_found"


async def test_admin_sees_every_account_and_filters_by_one(
    browser_like: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    first = await create_user(api, credits=1_000_000, name="alpha")
    second = await create_user(api, credits=1_000_000, name="beta")
    a = (await start_run(api, first)).json()["run_id"]
    b = (await start_run(api, second)).json()["run_id"]
    await sign_in(browser_like, ADMIN_TOKEN)
    every = await browser_like.get("/ui/runs")
    assert "admin · every account" in every.text
    assert a in every.text
    assert b in every.text
    only = await browser_like.get(f"/ui/runs?billing_account_id={first.billing_account_id}")
    assert a in only.text
    assert b not in only.text
    assert (await browser_like.get(f"/ui/runs/{b}")).status_code == 200
    # A user's URL cannot widen its scope with the admin's parameter.
    await browser_like.post("/ui/logout", data={"csrf_token": csrf_of(only.text)})
    await sign_in(browser_like, first.api_key)
    mine = await browser_like.get(f"/ui/runs?billing_account_id={second.billing_account_id}")
    assert a in mine.text
    assert b not in mine.text


async def test_filters_counts_cost_range_and_cursor_pages(
    browser_like: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    tenant = await create_user(api, credits=5_000_000, name="filters")
    ids = [
        (await start_run(api, tenant, payload={"input": {"topic": f"t{i}"}})).json()["run_id"]
        for i in range(3)
    ]
    for run_id in ids:
        assert (await wait_for_run(api, tenant, run_id))["status"] == "success"
    await sign_in(browser_like, tenant.api_key)
    listing = await browser_like.get("/ui/runs")
    assert all(i in listing.text for i in ids)
    assert 'data-status="success">success <b>3</b>' in listing.text
    none = await browser_like.get("/ui/runs?status=error")
    assert not any(i in none.text for i in ids)
    assert 'id="no-runs"' in none.text
    # Counts are per status under the other filters, so the filter shows where the runs are.
    assert 'data-status="success">success <b>3</b>' in none.text
    costly = await browser_like.get("/ui/runs?cost_min=999999999")
    assert not any(i in costly.text for i in ids)
    cheap = await browser_like.get("/ui/runs?cost_min=1&sort=cost_desc")
    assert all(i in cheap.text for i in ids)
    bad = await browser_like.get("/ui/runs?cost_min=lots")
    assert bad.status_code == 422
    assert "cost_min" in bad.text
    bad_sort = await browser_like.get("/ui/runs?sort=sideways")
    assert bad_sort.status_code == 422


async def test_replay_page_shows_the_preflight_estimate_then_starts_a_linked_run(
    browser_like: httpx.AsyncClient, api: httpx.AsyncClient, user: Tenant, settings: Settings
) -> None:
    original = (await start_run(api, user)).json()["run_id"]
    await wait_for_run(api, user, original)
    await sign_in(browser_like, user.api_key)
    confirm = await browser_like.get(f"/ui/runs/{original}/replay")
    graphs = (await api.get("/api/v1/graphs", headers=user.headers)).json()
    poet = next(g for g in graphs if g["graph_id"] == "langgraph:poet")
    expected = poet["max_model_calls"] * settings.preflight_credits_per_call
    assert f'id="replay-estimate">{expected:,}<' in confirm.text
    done = await browser_like.post(f"/ui/runs/{original}/replay", data={"csrf_token": csrf_of(confirm.text)})
    assert done.status_code == 303
    new_id = done.headers["location"].split("/ui/runs/")[1].split("?")[0]
    detail = (await api.get(f"/api/v1/runs/{new_id}", headers=user.headers)).json()
    assert detail["replay_of"] == original
    assert detail["run_kind"] == "replay"
