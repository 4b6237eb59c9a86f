"""How dashboard pages are drawn: the Jinja2 environment (autoescaped), the formatting filters, the
error page, and the security headers of every ``/ui`` response.

The Content-Security-Policy allows nothing but this origin: scripts and styles only from
``/ui/static`` (no inline script, no inline style attribute, no CDN), no frames, forms posting only
here. Charts are inline SVG drawn with presentation attributes, which CSP does not treat as styles.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


def credits(value: int | None) -> str:
    """``12345678`` → ``12,345,678``."""
    return "—" if value is None else f"{value:,}"


def when(value: datetime | None, zone: str | None = None) -> str:
    if value is None:
        return "—"
    if zone is not None:
        value = value.astimezone(ZoneInfo(zone))
        return value.strftime("%Y-%m-%d %H:%M:%S %Z")
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value.utcoffset() is not None else str(value)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["credits"] = credits
env.filters["when"] = when
env.filters["pretty_json"] = pretty_json


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def error_page(request: Request, status: int, code: str, message: str) -> Response:
    """Errors of ``/ui`` paths: a sign-in redirect for 401, else the error page."""
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?next={_quote(target)}", status_code=303)
    viewer = getattr(request.state, "ui_viewer", None)
    return page("error.html", status_code=status, viewer=viewer, status=status, code=code, message=message)


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="/")


class SecurityHeaders:
    """ASGI middleware: the headers above on every response under ``/ui``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/ui"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)
