"""Hostile input gets a 4xx in the SPEC §4 envelope, never a 500 (issue 12, the 33 HTTP 500s found
from outside), and changes nothing. Every case of the issue, on every route that takes it:

- authentication before the body is read; bodies over ``RUNLEDGER_MAX_BODY_BYTES`` → 413;
- NUL and lone surrogates in any stored string, integers outside BIGINT, deep nesting → 422;
- odd UUID spellings of path ids (``urn:uuid:``, braces, no dashes) → 422;
- cursors holding integers ≥ 2^63 or 1e300, ``Last-Event-ID``/``after`` ≥ 2^63 → 422;
- dates past year 9999 in UTC → 422; huge header values → 400;
- never-firing crons and non-IANA zones → 422; 405 carries ``Allow``;
- the webhook receiver: a 400-digit timestamp → 401, a signed body of 50,000 ``[`` → 422.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from db.pagination import encode_cursor
from db.session import Database
from runledger.contracts.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from tests.db.queries import scalar
from tests.helpers import ADMIN, Tenant, create_user, start_run, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")

NUL = "a\u0000b"
SURROGATE = "\ud800"
HUGE_INT = 2**63
POET = "langgraph:poet"


def assert_refused(resp: httpx.Response, status: int, code: str | None = None) -> None:
    assert resp.status_code == status, (resp.request.method, resp.request.url, resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str), body
    assert body["error"]["code"], body
    assert isinstance(body["error"]["message"], str), body
    assert body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, body


def raw(value: Any) -> bytes:
    """JSON as a client sends it: ``\\u0000`` and ``\\ud800`` escaped (json.dumps' ensure_ascii)."""
    return json.dumps(value).encode()


BodyOf = Callable[[Any], dict[str, Any]]


class Routes:
    """Every JSON route that stores what it is sent, with where a hostile value goes in its body."""

    def __init__(self, user: Tenant, schedule_id: str) -> None:
        self.user = user
        self.schedule_id = schedule_id

    def all(self) -> list[tuple[str, str, dict[str, str], BodyOf]]:
        u = self.user.headers
        return [
            ("POST", "/api/v1/admin/users", ADMIN, lambda v: {"name": v}),
            (
                "POST",
                f"/api/v1/admin/billing-accounts/{self.user.billing_account_id}/credits",
                ADMIN,
                lambda v: {"amount_credits": 5, "reference": v},
            ),
            ("POST", f"/api/v1/graphs/{POET}/runs", u, lambda v: {"input": {"topic": v}}),
            ("POST", f"/api/v1/graphs/{POET}/runs", u, lambda v: {"input": {"topic": "x"}, "state_key": v}),
            ("POST", "/api/v1/grants", u, lambda v: {"scopes": [v]}),
            (
                "POST",
                "/api/v1/schedules",
                u,
                lambda v: {"graph_id": POET, "input": {"topic": v}, "cron": "0 9 * * *", "timezone": "UTC"},
            ),
            ("PATCH", f"/api/v1/schedules/{self.schedule_id}", u, lambda v: {"input": {"topic": v}}),
            (
                "POST",
                "/api/v1/webhook-triggers",
                u,
                lambda v: {"source": "hostile", "graph_id": POET, "input": {"topic": v}},
            ),
            (
                "POST",
                "/api/v1/graphs/langgraph:chat/chat",
                u,
                lambda v: {"messages": [{"id": "m", "role": "user", "parts": [{"type": "text", "text": v}]}]},
            ),
            (
                "POST",
                "/v1/chat/completions",
                u,
                lambda v: {"model": "langgraph:chat", "messages": [{"role": "user", "content": v}]},
            ),
            ("POST", "/api/v1/me/api-keys", u, lambda v: {"name": v}),
        ]


@pytest.fixture
async def routes(api: httpx.AsyncClient, user: Tenant) -> Routes:
    resp = await api.post(
        "/api/v1/schedules",
        json={"graph_id": POET, "input": {"topic": "tides"}, "cron": "0 9 * * *", "timezone": "UTC"},
        headers=user.headers,
    )
    assert resp.status_code == 201, resp.text
    return Routes(user, resp.json()["schedule_id"])


async def send(
    api: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], body: bytes
) -> httpx.Response:
    return await api.request(
        method, path, content=body, headers={**headers, "Content-Type": "application/json"}
    )


@pytest.mark.parametrize("hostile", [NUL, SURROGATE], ids=["nul", "lone_surrogate"])
async def test_unstorable_strings_are_422_and_change_nothing(
    api: httpx.AsyncClient, routes: Routes, database: Database, hostile: str
) -> None:
    before = await _row_counts(database)
    for method, path, headers, body_of in routes.all():
        assert_refused(await send(api, method, path, headers, raw(body_of(hostile))), 422)
        # Also as a key, and nested deep inside an otherwise valid value.
        assert_refused(await send(api, method, path, headers, raw(body_of({hostile: [hostile]}))), 422)
    assert await _row_counts(database) == before


async def _row_counts(database: Database) -> tuple[int, ...]:
    counts = []
    for table in ("users", "graph_runs", "credit_ledger", "execution_grants", "schedules", "api_keys"):
        counts.append(int(await scalar(database, f"SELECT count(*) FROM {table}")))
    return tuple(counts)


async def test_out_of_range_numbers_and_deep_nesting_are_422(api: httpx.AsyncClient, routes: Routes) -> None:
    deep: Any = "x"
    for _ in range(200):
        deep = [deep]
    marker = "__hostile__"
    for method, path, headers, body_of in routes.all():
        template = raw(body_of(marker))
        assert template.count(marker.encode()) == 1
        for hostile_body in (
            *(
                template.replace(f'"{marker}"'.encode(), number)
                for number in (str(HUGE_INT).encode(), str(-HUGE_INT - 1).encode(), b"1e400", b"9" * 5000)
            ),
            raw(body_of(deep)),
            b"[" * 50_000,
        ):
            assert_refused(await send(api, method, path, headers, hostile_body), 422)


async def test_authentication_comes_before_the_body(api: httpx.AsyncClient, routes: Routes) -> None:
    big = b'{"input": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    for method, path, headers, _ in routes.all():
        no_key = {"Content-Type": "application/json"}
        assert_refused(await api.request(method, path, content=b"{", headers=no_key), 401, "unauthorized")
        assert_refused(await api.request(method, path, content=big, headers=no_key), 401)
        wrong_key = {**no_key, "Authorization": "Bearer rl_not-a-key"}
        assert_refused(await api.request(method, path, content=b"{", headers=wrong_key), 401)
        if headers is ADMIN:  # a user's key on an admin route: 403, still before the body
            assert_refused(await send(api, method, path, routes.user.headers, b"{"), 403, "forbidden")


async def test_bodies_over_the_limit_are_413_before_parsing(
    api: httpx.AsyncClient, routes: Routes, database: Database
) -> None:
    before = await _row_counts(database)
    limit = 1_048_576  # the default RUNLEDGER_MAX_BODY_BYTES
    for method, path, headers, body_of in routes.all():
        valid = raw(body_of("x"))
        padded = valid[:-1] + b', "pad": "' + b"x" * limit + b'"}'
        assert_refused(await send(api, method, path, headers, padded), 413, "payload_too_large")

        async def chunks(data: bytes = padded) -> Any:  # no Content-Length: counted as it streams
            for start in range(0, len(data), 65_536):
                yield data[start : start + 65_536]

        streamed = await api.request(
            method, path, content=chunks(), headers={**headers, "Content-Type": "application/json"}
        )
        assert_refused(streamed, 413, "payload_too_large")
    assert await _row_counts(database) == before


ID_ROUTES = [
    ("GET", "/api/v1/runs/{id}"),
    ("GET", "/api/v1/runs/{id}/charges"),
    ("GET", "/api/v1/runs/{id}/events"),
    ("GET", "/api/v1/runs/{id}/ui-stream"),
    ("POST", "/api/v1/runs/{id}/cancel"),
    ("POST", "/api/v1/runs/{id}/replay"),
    ("DELETE", "/api/v1/grants/{id}"),
    ("GET", "/api/v1/schedules/{id}"),
    ("PATCH", "/api/v1/schedules/{id}"),
    ("DELETE", "/api/v1/schedules/{id}"),
    ("POST", "/api/v1/schedules/{id}/trigger"),
    ("GET", "/api/v1/webhook-triggers/{id}"),
    ("DELETE", "/api/v1/webhook-triggers/{id}"),
    ("DELETE", "/api/v1/me/api-keys/{id}"),
]


async def test_odd_uuid_spellings_of_path_ids_are_422(api: httpx.AsyncClient, user: Tenant) -> None:
    run_id = (await start_run(api, user)).json()["run_id"]
    await wait_for_run(api, user, run_id)
    spellings = [f"urn:uuid:{run_id}", f"{{{run_id}}}", uuid.UUID(run_id).hex, f"{run_id}%00"]
    for method, template in ID_ROUTES:
        for odd in spellings:
            path = template.format(id=odd)
            body = {"cron": "0 1 * * *"} if method == "PATCH" else None
            assert_refused(await api.request(method, path, json=body, headers=user.headers), 422)
    for odd in spellings:
        resp = await api.post(
            f"/api/v1/admin/billing-accounts/{odd}/credits",
            json={"amount_credits": 5, "reference": "r"},
            headers=ADMIN,
        )
        assert_refused(resp, 422)
    # An upper-case spelling is the same id: it is normalized, and the run is found.
    assert (await api.get(f"/api/v1/runs/{run_id.upper()}", headers=user.headers)).status_code == 200


async def test_cursors_and_limits_out_of_range_are_422(api: httpx.AsyncClient, user: Tenant) -> None:
    run_id = (await start_run(api, user)).json()["run_id"]
    now = "2026-01-01T00:00:00+00:00"
    lists: dict[str, list[list[Any]]] = {
        "/api/v1/runs": [[now, HUGE_INT], [1e300, run_id], ["9999-12-31T23:59:59-05:00", run_id]],
        "/api/v1/billing/ledger": [[HUGE_INT], [1e300], [-1], [True], ["1"]],
        "/api/v1/billing/receipts": [[now, 1e300], [HUGE_INT, run_id], ["9999-12-31T23:59:59-05:00", run_id]],
        f"/api/v1/runs/{run_id}/charges": [[now, HUGE_INT], [1e300, run_id], [now, f"urn:uuid:{run_id}"]],
    }
    for path, cursors in lists.items():
        for values in cursors:
            resp = await api.get(path, params={"cursor": encode_cursor(values)}, headers=user.headers)
            assert_refused(resp, 422, "invalid_cursor")
        for limit in (str(HUGE_INT), "1e300", "0", "101", "-1"):
            assert_refused(await api.get(path, params={"limit": limit}, headers=user.headers), 422)
    events = f"/api/v1/runs/{run_id}/events"
    for value in (str(HUGE_INT), str(10**400), "-1", "1e300"):
        assert_refused(await api.get(events, headers={**user.headers, "Last-Event-ID": value}), 422)
        assert_refused(await api.get(events, params={"after": value}, headers=user.headers), 422)


async def test_charges_are_cursor_paginated(api: httpx.AsyncClient, user: Tenant) -> None:
    run_id = (await start_run(api, user, graph_id="langgraph:brief")).json()["run_id"]
    assert (await wait_for_run(api, user, run_id))["status"] == "success"
    everything = (await api.get(f"/api/v1/runs/{run_id}/charges", headers=user.headers)).json()
    assert len(everything["receipts"]) == 3
    assert everything["next_cursor"] is None
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(f"/api/v1/runs/{run_id}/charges", params=params, headers=user.headers)).json()
        assert len(page["receipts"]) == 1, page
        seen += [r["id"] for r in page["receipts"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["id"] for r in everything["receipts"]]


async def test_dates_past_year_9999_in_utc_are_422(api: httpx.AsyncClient, user: Tenant) -> None:
    for far in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"):
        grant = await api.post(
            "/api/v1/grants", json={"scopes": ["graph:execute:*"], "expires_at": far}, headers=user.headers
        )
        assert_refused(grant, 422)
        for name in ("created_after", "created_before"):
            assert_refused(await api.get("/api/v1/runs", params={name: far}, headers=user.headers), 422)


async def test_nul_in_query_and_path_is_422(api: httpx.AsyncClient, user: Tenant) -> None:
    assert_refused(await api.get("/api/v1/runs", params={"graph_id": NUL}, headers=user.headers), 422)
    assert_refused(await start_run(api, user, graph_id="langgraph:poet%00"), 422)


async def test_huge_header_values_are_400(api: httpx.AsyncClient, user: Tenant) -> None:
    huge = "k" * 100_000
    assert_refused(await start_run(api, user, key=huge), 400, "header_too_large")
    assert_refused(await api.get("/api/v1/me", headers={"Authorization": f"Bearer {huge}"}), 400)
    assert_refused(await api.get("/api/v1/me", headers={**user.headers, "X-Anything": huge}), 400)


async def test_never_firing_crons_and_non_iana_zones_are_422(
    api: httpx.AsyncClient, user: Tenant, routes: Routes
) -> None:
    base = {"graph_id": POET, "input": {"topic": "x"}, "cron": "0 9 * * *", "timezone": "UTC"}
    for change, code in (
        ({"cron": "0 0 31 2 *"}, "invalid_cron"),
        ({"cron": "0 0 30 2 *"}, "invalid_cron"),
        ({"timezone": "localtime"}, "invalid_timezone"),
        ({"timezone": "Factory"}, "invalid_timezone"),
        ({"timezone": "posix/Europe/Paris"}, "invalid_timezone"),
    ):
        assert_refused(
            await api.post("/api/v1/schedules", json={**base, **change}, headers=user.headers), 422, code
        )
        patch = await api.patch(f"/api/v1/schedules/{routes.schedule_id}", json=change, headers=user.headers)
        assert_refused(patch, 422, code)
    leap = await api.post("/api/v1/schedules", json={**base, "cron": "0 0 29 2 *"}, headers=user.headers)
    assert leap.status_code == 201, leap.text


async def test_405_carries_allow(api: httpx.AsyncClient, user: Tenant) -> None:
    resp = await api.put("/api/v1/me", headers=user.headers)
    assert_refused(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["allow"]
    resp = await api.patch("/api/v1/grants", headers=user.headers)
    assert_refused(resp, 405)
    assert set(resp.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


async def test_openapi_declares_every_status_with_the_envelope(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            expected = {"400", "422"}
            if operation.get("security"):
                expected.add("401")
            if "{" in path:
                expected.add("404")
            if "requestBody" in operation or path.startswith("/api/v1/webhooks/"):
                expected.add("413")
            if path.startswith("/api/v1/admin/") or path == "/api/v1/billing/reconciliation":
                expected.add("403")
            assert expected <= set(responses), (method, path, sorted(responses))
            for status in expected:
                assert responses[status]["content"]["application/json"]["schema"] == envelope, (method, path)
    runs = spec["paths"]["/api/v1/graphs/{graph_id}/runs"]["post"]["responses"]
    assert {"402", "503"} <= set(runs)
    assert (
        "409"
        in spec["paths"]["/api/v1/admin/billing-accounts/{billing_account_id}/credits"]["post"]["responses"]
    )


async def test_webhook_huge_timestamp_and_deep_signed_body_are_4xx(api: httpx.AsyncClient) -> None:
    owner = await create_user(api, credits=1_000_000)
    source = f"hostile-{uuid.uuid4().hex[:8]}"
    trigger = await api.post(
        "/api/v1/webhook-triggers",
        json={"source": source, "graph_id": POET, "input_mapping": {"topic": "/t"}},
        headers=owner.headers,
    )
    assert trigger.status_code == 201, trigger.text
    secret = trigger.json()["secret"]

    def headers(body: bytes, ts: str, delivery: str) -> dict[str, str]:
        sig = signature(secret, timestamp=int(ts), delivery_id=delivery, body=body)
        return {DELIVERY_HEADER: delivery, TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sig}

    url = f"/api/v1/webhooks/{source}"
    body = b'{"t": "x"}'
    for ts in ("9" * 400, "1" + "0" * 399):
        assert_refused(
            await api.post(url, content=body, headers=headers(body, ts, "d1")), 401, "invalid_signature"
        )
    now = str(int(time.time()))
    for hostile in (
        b"[" * 50_000,
        raw({"t": NUL}),
        raw({"t": SURROGATE}),
        b'{"t": ' + str(HUGE_INT).encode() + b"}",
    ):
        resp = await api.post(url, content=hostile, headers=headers(hostile, now, f"d-{uuid.uuid4()}"))
        assert_refused(resp, 422, "invalid_payload")
