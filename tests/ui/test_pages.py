"""The dashboard over plain HTTP (the real app over ASGI): sign-in and sessions, CSRF on every
state-changing route, tenant isolation, security headers, the explorer's filters and counts, and
a replay's estimate. The browser tests (tests/ui/test_browser.py) drive the same pages in Chromium."""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from temporalio.client import Client

from api import ui
from api.app import create_app
from db.session import Database
from runledger.config import Settings
from tests.api.test_webhooks import deliver
from tests.db.queries import rows, scalar
from tests.helpers import ADMIN_TOKEN, Tenant, create_user, eventually, start_run, wait_for_run
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
    # Cursor pages, newest first and by cost, keep the filter and visit every run once.
    for sort in ("created_desc", "cost_asc"):
        seen: list[str] = []
        url: str | None = f"/ui/runs?limit=2&sort={sort}&graph_id=langgraph:poet"
        while url is not None:
            listed = await browser_like.get(url)
            assert listed.status_code == 200, listed.text
            seen += [i for i in ids if f'data-run-id="{i}"' in listed.text]
            found = re.search(r'href="([^"]+)" id="next-page"', listed.text)
            url = html.unescape(found.group(1)) if found else None
            if url is not None:
                assert "graph_id=langgraph%3Apoet" in url
                assert f"sort={sort}" in url
        assert sorted(seen) == sorted(ids)
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
    dry = await api.post(f"/api/v1/runs/{original}/replay", json={"dry_run": True}, headers=user.headers)
    expected = dry.json()["estimated_credits"]
    assert expected > 0
    assert f'id="replay-estimate">{expected:,}<' in confirm.text
    done = await browser_like.post(f"/ui/runs/{original}/replay", data={"csrf_token": csrf_of(confirm.text)})
    assert done.status_code == 303
    new_id = done.headers["location"].split("/ui/runs/")[1].split("?")[0]
    detail = (await api.get(f"/api/v1/runs/{new_id}", headers=user.headers)).json()
    assert detail["replay_of"] == original
    assert detail["run_kind"] == "replay"


async def test_bulk_replay_of_a_selection_confirms_count_and_estimate_and_runs_once_on_two_clicks(
    browser_like: httpx.AsyncClient, api: httpx.AsyncClient, database: Database, settings: Settings
) -> None:
    tenant = await create_user(api, credits=5_000_000, name="bulk")
    picked = [(await start_run(api, tenant)).json()["run_id"] for _ in range(2)]
    for run_id in picked:
        await wait_for_run(api, tenant, run_id)
    await sign_in(browser_like, tenant.api_key)
    listing = await browser_like.get("/ui/runs")
    form = {"csrf_token": csrf_of(listing.text), "mode": "replay:selected", "run_id": picked}
    confirm = await browser_like.post("/ui/bulk", data=form)
    assert confirm.status_code == 200, confirm.text
    assert 'id="bulk-count">2<' in confirm.text
    each = [
        (await api.post(f"/api/v1/runs/{r}/replay", json={"dry_run": True}, headers=tenant.headers)).json()
        for r in picked
    ]
    assert f'id="bulk-estimate">{sum(e["estimated_credits"] for e in each):,}<' in confirm.text
    action = confirm.text.split('action="/ui/bulk/')[1].split('"')[0]
    token = csrf_of(confirm.text)
    first, second = await asyncio.gather(
        browser_like.post(f"/ui/bulk/{action}", data={"csrf_token": token}),
        browser_like.post(f"/ui/bulk/{action}", data={"csrf_token": token}),
    )
    assert first.headers["location"] == second.headers["location"]

    async def outcomes() -> list[dict[str, Any]]:
        return await rows(
            database,
            "SELECT i.outcome, i.new_run_id::text AS new_run_id, o.status FROM bulk_operation_items i "
            "JOIN bulk_operations o ON o.id = i.operation_id WHERE o.id = :op ORDER BY i.position",
            op=action.split("/")[0],
        )

    done = await eventually(outcomes, until=lambda r: all(x["status"] == "done" for x in r), within=60)
    assert [x["outcome"] for x in done] == ["replayed", "replayed"]
    replays = await rows(
        database,
        "SELECT replay_of::text AS replay_of FROM graph_runs WHERE billing_account_id = :a AND run_kind = 'replay'",
        a=tenant.billing_account_id,
    )
    assert sorted(r["replay_of"] for r in replays) == sorted(picked)  # one replay per run, not two
    progress = await browser_like.get(first.headers["location"])
    assert "replayed <b>2</b>" in progress.text
    # Another tenant cannot see the operation.
    other = await create_user(api, name="nosy")
    await browser_like.post("/ui/logout", data={"csrf_token": csrf_of(progress.text)})
    await sign_in(browser_like, other.api_key)
    assert (await browser_like.get(first.headers["location"])).status_code == 404


async def test_schedule_pages_next_five_times_in_zone_pause_resume_and_isolation(
    browser_like: httpx.AsyncClient, api: httpx.AsyncClient, user: Tenant
) -> None:
    created = await api.post(
        "/api/v1/schedules",
        json={
            "graph_id": "langgraph:poet",
            "input": {"topic": "tides"},
            "cron": "0 9 * * *",
            "timezone": "Asia/Tokyo",
            "notify_url": "https://ops.notify.test/schedules",
        },
        headers=user.headers,
    )
    assert created.status_code == 201, created.text
    schedule_id = created.json()["schedule_id"]
    await sign_in(browser_like, user.api_key)
    listing = await browser_like.get("/ui/schedules")
    assert schedule_id[:8] in listing.text
    detail = await browser_like.get(f"/ui/schedules/{schedule_id}")
    next_runs = detail.text.split('id="next-runs">')[1].split("</ol>")[0]
    assert next_runs.count("09:00:00 JST") == 5
    assert (
        "https://ops.notify.test/schedules" in detail.text.split('id="schedule-notify">')[1].split("</dd>")[0]
    )
    paused = await browser_like.post(
        f"/ui/schedules/{schedule_id}/enabled", data={"csrf_token": csrf_of(detail.text), "enabled": "false"}
    )
    assert paused.status_code == 303
    api_view = (await api.get(f"/api/v1/schedules/{schedule_id}", headers=user.headers)).json()
    assert api_view["enabled"] is False
    assert api_view["paused"] is True
    await browser_like.post(
        f"/ui/schedules/{schedule_id}/enabled", data={"csrf_token": csrf_of(detail.text), "enabled": "true"}
    )
    assert (await api.get(f"/api/v1/schedules/{schedule_id}", headers=user.headers)).json()["paused"] is False
    # Run now: the schedule's run appears, and the page lists it among the last runs.
    ran = await browser_like.post(
        f"/ui/schedules/{schedule_id}/trigger", data={"csrf_token": csrf_of(detail.text)}
    )
    assert ran.status_code == 303

    async def schedule_runs() -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = (
            await api.get(f"/api/v1/runs?schedule_id={schedule_id}", headers=user.headers)
        ).json()["runs"]
        return listed

    (slot_run,) = await eventually(schedule_runs, until=lambda r: len(r) == 1, within=60)
    assert slot_run["run_kind"] == "system_scheduled"
    assert slot_run["run_id"][:8] in (await browser_like.get(f"/ui/schedules/{schedule_id}")).text
    other = await create_user(api, name="schedule-nosy")
    await browser_like.post("/ui/logout", data={"csrf_token": csrf_of(detail.text)})
    await sign_in(browser_like, other.api_key)
    refused = await browser_like.get(f"/ui/schedules/{schedule_id}")
    assert refused.status_code == 404
    assert "schedule_not_found" in refused.text
    assert schedule_id[:8] not in (await browser_like.get("/ui/schedules")).text
    await api.delete(f"/api/v1/schedules/{schedule_id}", headers=user.headers)


async def test_trigger_pages_hide_the_secret_and_another_users_trigger_is_404(
    browser_like: httpx.AsyncClient, api: httpx.AsyncClient, user: Tenant
) -> None:
    created = await api.post(
        "/api/v1/webhook-triggers",
        json={"source": f"ui-{uuid.uuid4().hex[:8]}", "graph_id": "langgraph:poet", "input": {"topic": "x"}},
        headers=user.headers,
    )
    assert created.status_code == 201, created.text
    trigger = created.json()
    delivery_id = f"ui-delivery-{uuid.uuid4().hex[:8]}"
    sent = await deliver(api, trigger["source"], trigger["secret"], b'{"issue": {"title": "x"}}', delivery_id)
    assert sent.status_code == 202, sent.text
    await sign_in(browser_like, user.api_key)
    detail = await browser_like.get(f"/ui/triggers/{trigger['trigger_id']}")
    assert detail.status_code == 200
    # The delivery audit log of the trigger, with the run it started.
    log = detail.text.split('id="trigger-deliveries"')[1]
    assert delivery_id in log
    assert "accepted" in log
    assert sent.json()["runs"][0]["run_id"][:8] in log
    assert trigger["source"] in detail.text
    assert trigger["secret"] not in detail.text
    assert trigger["source"] in (await browser_like.get("/ui/triggers")).text
    other = await create_user(api, name="trigger-nosy")
    await browser_like.post("/ui/logout", data={"csrf_token": csrf_of(detail.text)})
    await sign_in(browser_like, other.api_key)
    assert (await browser_like.get(f"/ui/triggers/{trigger['trigger_id']}")).status_code == 404


async def test_billing_page_shows_balance_holds_ledger_and_server_drawn_charts(
    browser_like: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    tenant = await create_user(api, credits=3_000_000, name="spender")
    run_id = (await start_run(api, tenant)).json()["run_id"]
    run = await wait_for_run(api, tenant, run_id)
    await sign_in(browser_like, tenant.api_key)
    billing = await browser_like.get("/ui/billing")
    me = (await api.get("/api/v1/me", headers=tenant.headers)).json()
    assert f"{me['balance_credits']:,} credits" in billing.text
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in billing.text
    assert 'id="chart-daily"' in billing.text
    assert "langgraph:poet: " + f"{run['cost_credits']:,} credits" in billing.text  # today's bar
    assert f"{run_id[:8]} langgraph:poet" in billing.text  # the top-runs chart
    ledger = billing.text.split('id="ledger"')[1]
    assert "<td>topup</td>" in ledger
    assert f'<td class="num">-{run["cost_credits"]:,}</td>' in ledger  # the run's debit


async def test_a_bulk_operation_whose_process_vanished_is_continued_without_acting_twice(
    browser_like: httpx.AsyncClient, api: httpx.AsyncClient, database: Database
) -> None:
    tenant = await create_user(api, credits=5_000_000, name="bulk-stalled")
    picked = [(await start_run(api, tenant)).json()["run_id"] for _ in range(2)]
    for run_id in picked:
        await wait_for_run(api, tenant, run_id)
    await sign_in(browser_like, tenant.api_key)
    listing = await browser_like.get("/ui/runs")
    confirm = await browser_like.post(
        "/ui/bulk", data={"csrf_token": csrf_of(listing.text), "mode": "replay:selected", "run_id": picked}
    )
    operation_id = confirm.text.split('action="/ui/bulk/')[1].split("/run")[0]
    # What a process killed mid-operation leaves: claimed a minute ago, its first run being worked on.
    await scalar(
        database,
        "UPDATE bulk_operations SET status = 'running', started_at = now() - interval '1 minute' "
        "WHERE id = :op RETURNING 1",
        op=operation_id,
    )
    await scalar(
        database,
        "UPDATE bulk_operation_items SET outcome = 'working', updated_at = now() - interval '1 minute' "
        "WHERE operation_id = :op AND position = 0 RETURNING 1",
        op=operation_id,
    )
    token = csrf_of(confirm.text)
    # Confirming again does not start a second executor on a claimed operation.
    await browser_like.post(f"/ui/bulk/{operation_id}/run", data={"csrf_token": token})
    progress = await browser_like.get(f"/ui/bulk/{operation_id}")
    assert 'id="bulk-stalled"' in progress.text
    assert (
        await browser_like.post(f"/ui/bulk/{operation_id}/continue", data={"csrf_token": token})
    ).status_code == 303

    async def items() -> list[dict[str, Any]]:
        return await rows(
            database,
            "SELECT i.run_id::text AS run_id, i.outcome, i.message, o.status FROM bulk_operation_items i "
            "JOIN bulk_operations o ON o.id = i.operation_id WHERE o.id = :op ORDER BY i.position",
            op=operation_id,
        )

    done = await eventually(items, until=lambda r: all(x["status"] == "done" for x in r), within=60)
    assert [x["outcome"] for x in done] == ["failed", "replayed"]
    assert "interrupted" in done[0]["message"]
    # Continuing a finished operation does nothing more.
    await browser_like.post(f"/ui/bulk/{operation_id}/continue", data={"csrf_token": token})
    replays = await rows(
        database,
        "SELECT replay_of::text AS replay_of FROM graph_runs WHERE billing_account_id = :a AND run_kind = 'replay'",
        a=tenant.billing_account_id,
    )
    assert [r["replay_of"] for r in replays] == [done[1]["run_id"]]
    assert {x["run_id"] for x in done} == set(picked)


async def test_replay_from_a_checkpoint_prices_only_what_remains(
    browser_like: httpx.AsyncClient, api: httpx.AsyncClient, user: Tenant
) -> None:
    original = (await start_run(api, user, "langgraph:brief", {"input": {"topic": "tides"}})).json()["run_id"]
    assert (await wait_for_run(api, user, original, within=60))["status"] == "success"
    checkpoints = (await api.get(f"/api/v1/runs/{original}/checkpoints", headers=user.headers)).json()[
        "checkpoints"
    ]
    middle = checkpoints[len(checkpoints) // 2]["checkpoint_id"]
    await sign_in(browser_like, user.api_key)
    whole = await browser_like.get(f"/ui/runs/{original}/replay")
    assert f"from_checkpoint_id={middle}" in whole.text  # each step is offered
    partial = await browser_like.get(f"/ui/runs/{original}/replay?from_checkpoint_id={middle}")
    dry = (
        await api.post(
            f"/api/v1/runs/{original}/replay",
            json={"from_checkpoint_id": middle, "dry_run": True},
            headers=user.headers,
        )
    ).json()
    assert f'id="replay-estimate">{dry["estimated_credits"]:,}<' in partial.text  # the API's own dry run
    full = (
        await api.post(f"/api/v1/runs/{original}/replay", json={"dry_run": True}, headers=user.headers)
    ).json()
    assert dry["estimated_credits"] < full["estimated_credits"]
    assert f'id="replay-estimate">{full["estimated_credits"]:,}<' in whole.text
    started = await browser_like.post(
        f"/ui/runs/{original}/replay",
        data={"csrf_token": csrf_of(partial.text), "from_checkpoint_id": middle},
    )
    assert started.status_code == 303
    new_id = started.headers["location"].split("/ui/runs/")[1].split("?")[0]
    replayed = await wait_for_run(api, user, new_id, within=60)
    assert replayed["replay_of"] == original
    assert replayed["status"] == "success"
