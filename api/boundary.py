"""The HTTP boundary: one ASGI layer every request crosses before a route sees it.

Contract, in this order, each refusal in the SPEC §4 envelope and before anything is written:

1. header values over ``MAX_HEADER_BYTES`` → 400 ``header_too_large``; a NUL in the path, the query
   string or a header → 422 ``validation_error`` (Postgres refuses NUL in text);
2. a route that needs a caller (its dependencies include ``require_user``/``require_admin``) is
   authenticated and authorized here, from the ``Authorization`` header alone, *before the body is
   read*: no or an unknown bearer → 401, a user's key on an admin route → 403. The caller is kept in
   the scope, where :func:`api.deps.require_user` finds it;
3. a body (POST/PUT/PATCH/DELETE) over ``Settings.max_body_bytes`` → 413 ``payload_too_large``, from
   ``Content-Length`` or as soon as the stream passes the limit (a huge body is never held whole);
4. a JSON body is checked by :func:`parse_json` (NUL, lone surrogates, integers outside BIGINT,
   non-finite numbers, nesting deeper than ``MAX_DEPTH``) → 422 ``validation_error``; then the same
   bytes are replayed to the route, which parses and validates its own model as usual.

A route whose endpoint is marked :func:`raw_body` (the signed webhook receiver: its signature is
checked before the body is parsed) reads and limits its own body, and calls :func:`parse_json` after
its signature check.
"""

from __future__ import annotations

import hmac
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import (
    AppError,
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    Unauthorized,
    Unprocessable,
    error_body,
)
from api.keys import hash_api_key
from db import accounts
from db.accounts import Principal
from runledger.contracts.errors import ErrorCode

#: The longest header value accepted (a bearer key is ~50 bytes; an Idempotency-Key at most 255).
MAX_HEADER_BYTES = 8192
#: Deepest JSON nesting accepted in a body (graph inputs are a few levels deep).
MAX_DEPTH = 64
#: Integers must fit a Postgres BIGINT wherever they land.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1

AUTH_SCOPE_KEY = "runledger.auth"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: NUL (refused by Postgres text and jsonb) and UTF-16 surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

F = TypeVar("F", bound=Callable[..., Any])


def raw_body(endpoint: F) -> F:
    """Mark an endpoint that reads, limits and parses its own body (after checking a signature)."""
    endpoint.__dict__["runledger_raw_body"] = True
    return endpoint


@dataclass(frozen=True)
class Admin:
    """The caller presented the admin token."""


ADMIN = Admin()
Caller = Principal | Admin


class _Refused(ValueError):
    pass


def _bounded_int(text: str) -> int:
    # Checked on the digits, so a 5,000-digit number costs nothing to refuse.
    if len(text.lstrip("-")) > 19 or not INT_MIN <= (value := int(text)) <= INT_MAX:
        raise _Refused(f"integer {text[:24]}{'…' if len(text) > 24 else ''} is outside -2^63..2^63-1")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number {text[:24]} is out of range")
    return value


def _no_constant(text: str) -> Any:
    raise _Refused(f"{text} is not JSON")


def _check_tree(value: Any) -> None:
    """Walk without recursion, so depth is refused by count, never by the interpreter's stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                raise _Refused("strings must not contain NUL characters or lone UTF-16 surrogates")
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise _Refused(f"JSON is nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    stack.append((key, depth + 1))
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def parse_json(raw: bytes, *, code: str = ErrorCode.VALIDATION_ERROR) -> Any:
    """``raw`` as JSON that every layer below can store, or :class:`Unprocessable` (422, ``code``)."""
    try:
        value = json.loads(
            raw, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constant
        )
    except _Refused as exc:
        raise Unprocessable(str(exc), code=code) from None
    except RecursionError:
        raise Unprocessable(f"JSON is nested deeper than {MAX_DEPTH} levels", code=code) from None
    except ValueError as exc:  # includes UnicodeDecodeError
        raise Unprocessable(f"the body is not valid JSON: {str(exc)[:200]}", code=code) from None
    try:
        _check_tree(value)
    except _Refused as exc:
        raise Unprocessable(str(exc), code=code) from None
    return value


def _is_json(content_type: str | None) -> bool:
    return content_type is None or "json" in content_type.lower() or not content_type.strip()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _check_request_line(scope: Scope) -> AppError | None:
    for key, value in scope["headers"]:
        if len(value) > MAX_HEADER_BYTES:
            name = bytes(key).decode("latin-1")[:64]
            return BadRequest(
                f"header {name} is over {MAX_HEADER_BYTES} bytes", code=ErrorCode.HEADER_TOO_LARGE
            )
        if b"\x00" in value:
            return Unprocessable("header values must not contain NUL characters")
    if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
        return Unprocessable("the path and query must not contain NUL characters")
    return None


Role = Literal["user", "admin"]


def required_role(route: APIRoute) -> Role | None:
    """The caller a route depends on: ``require_admin`` → admin, ``require_user`` → user."""
    from api.deps import require_admin, require_user

    pending = list(route.dependant.dependencies)
    while pending:
        dep = pending.pop()
        if dep.call is require_admin:
            return "admin"
        if dep.call is require_user:
            return "user"
        pending.extend(dep.dependencies)
    return None


def authorize(caller: Caller, role: Role) -> None:
    """The admin token identifies no user (401 on a user's route); a user's key is not the admin
    token (403 on an admin route)."""
    if role == "user" and isinstance(caller, Admin):
        raise Unauthorized("the admin token does not identify a user; use a user's API key")
    if role == "admin" and not isinstance(caller, Admin):
        raise Forbidden("admin token required")


async def authenticate(app: Any, authorization: str | None) -> Caller:
    """The caller a bearer names: the admin token (constant-time), else a live user key; else 401."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer API key")
    state = app.state.runledger
    admin = state.settings.admin_token
    if admin is not None and hmac.compare_digest(admin.get_secret_value().encode(), token.encode()):
        return ADMIN
    key_hash = hash_api_key(token)
    principal: accounts.Principal | None = await state.database.single_statement(
        lambda conn: accounts.principal_for_key(conn, key_hash=key_hash)
    )
    if principal is None:
        raise Unauthorized("invalid API key")
    return principal


class Boundary:
    """The ASGI middleware of this module's contract."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._routes: dict[int, tuple[Role | None, bool]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            refusal = _check_request_line(scope)
            if refusal is not None:
                raise refusal
            role, raw = self._route_traits(scope)
            if role is not None:
                caller = await authenticate(scope["app"], _header(scope, b"authorization"))
                authorize(caller, role)
                scope[AUTH_SCOPE_KEY] = caller
            if scope["method"] in _BODY_METHODS and not raw:
                body = await self._read_body(scope, receive)
                if body and _is_json(_header(scope, b"content-type")):
                    parse_json(body)
                receive = _replay(body, receive)
        except AppError as exc:
            await _send_error(send, exc, openai=scope["path"].startswith("/v1/"))
            return
        await self.app(scope, receive, send)

    def _route_traits(self, scope: Scope) -> tuple[Role | None, bool]:
        """(authenticate here, the endpoint reads its own body) for the route ``scope`` names."""
        for context in iter_route_contexts(scope["app"].routes):
            route = context.original_route
            if not isinstance(route, APIRoute):
                continue
            match, _ = context.matches(scope)
            if match is Match.FULL:
                traits = self._routes.get(id(route))
                if traits is None:
                    traits = (
                        required_role(route),
                        bool(getattr(route.endpoint, "runledger_raw_body", False)),
                    )
                    self._routes[id(route)] = traits
                return traits
        return None, False

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.max_body_bytes
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            body.extend(message.get("body", b""))
            if len(body) > limit:
                raise PayloadTooLarge(f"the body is over {limit} bytes")
            if not message.get("more_body", False):
                break
        return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # then the disconnect, for streaming responses

    return replay


async def _send_error(send: Send, exc: AppError, *, openai: bool) -> None:
    if openai:  # the OpenAI-compatible routes answer errors in OpenAI's shape (still the envelope)
        from api.routes.openai_compat import openai_error_body

        body = openai_error_body(exc.status_code, exc.code, exc.message)
    else:
        body = error_body(exc.code, exc.message)
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if exc.status_code == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def install_boundary(app: FastAPI, *, max_body_bytes: int) -> None:
    app.add_middleware(Boundary, max_body_bytes=max_body_bytes)
