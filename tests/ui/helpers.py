"""Dashboard test helpers: sign a plain HTTP client in through the login form, read a page's CSRF
token (as a browser would, from the form it was given)."""

from __future__ import annotations

import re

import httpx

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, api_key: str) -> httpx.Response:
    form = await http.get("/ui/login")
    assert form.status_code == 200, form.text
    return await http.post(
        "/ui/login", data={"api_key": api_key, "csrf_token": csrf_of(form.text), "next": "/ui/runs"}
    )
