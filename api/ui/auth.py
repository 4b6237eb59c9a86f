"""Dashboard sign-in: sessions, the viewer of a request, CSRF, and the login/logout pages.

- ``POST /ui/login`` takes ``api_key``: a user's key signs in as that user (their account only); the
  admin token signs in as the admin (every account). The session cookie carries a random token,
  ``HttpOnly``, ``SameSite=Lax``, ``Secure`` over https, scoped to ``/ui``; the database keeps only
  its SHA-256 and the expiry (``RUNLEDGER_UI_SESSION_SECONDS``), and each request re-checks the key
  it signed in with (a revoked key or a rotated admin token ends the session).
- CSRF: every state-changing form carries ``csrf_token``, the SHA-256 of ``"csrf:" + session
  token`` (only this session's page can know it); without it the request is refused 403 and changes
  nothing. The login form, before any session, uses a double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from api.boundary import Admin, authenticate
from api.deps import AppState, StateDep
from api.errors import Forbidden, Unauthorized
from api.keys import hash_api_key
from api.ui.render import page
from db import accounts, ui_sessions
from db.accounts import Principal
from runledger.contracts.errors import ErrorCode

SESSION_COOKIE = "runledger_session"
LOGIN_CSRF_COOKIE = "runledger_login_csrf"
COOKIE_PATH = "/ui"

router = APIRouter(prefix="/ui", include_in_schema=False)


@dataclass(frozen=True)
class Viewer:
    """Who is looking: a user (``principal``) or the admin (every account)."""

    is_admin: bool
    principal: Principal | None
    csrf_token: str

    @property
    def billing_account_id(self) -> str | None:
        """The account scope of every query: None is every account (admin)."""
        return None if self.principal is None else self.principal.billing_account_id

    @property
    def user_id(self) -> str | None:
        return None if self.principal is None else self.principal.user_id


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def csrf_for(session_token: str) -> str:
    return _sha256("csrf:" + session_token)


def _admin_hash(state: AppState) -> str | None:
    token = state.settings.admin_token
    return None if token is None else hash_api_key(token.get_secret_value())


class LoginRequired(Unauthorized):
    pass


async def current_viewer(request: Request, state: StateDep) -> Viewer:
    """The signed-in viewer, or a redirect to the sign-in page (401 rendered by ``render``)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired("sign in first")
    async with state.database.transaction() as session:
        row = await ui_sessions.live(session, token_hash=_sha256(token))
    principal = None
    if row is not None and not row.is_admin:
        key_hash = row.key_hash
        principal = await state.database.single_statement(
            lambda conn: accounts.principal_for_key(conn, key_hash=key_hash)
        )
    if row is None:
        raise LoginRequired("the session has ended; sign in again")
    if row.is_admin:
        admin = _admin_hash(state)
        if admin is None or not hmac.compare_digest(admin, row.key_hash):
            raise LoginRequired("the admin token changed; sign in again")
    elif principal is None:
        raise LoginRequired("the API key of this session was revoked; sign in again")
    viewer = Viewer(is_admin=row.is_admin, principal=principal, csrf_token=csrf_for(token))
    request.state.ui_viewer = viewer
    return viewer


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


async def checked_form(request: Request, viewer: ViewerDep) -> Viewer:
    """The viewer of a state-changing form, once its CSRF token is checked (403 otherwise)."""
    sent = (await request.form()).get("csrf_token")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, viewer.csrf_token):
        raise Forbidden(
            "this form has no valid CSRF token; reload the page", code=ErrorCode.CSRF_TOKEN_INVALID
        )
    return viewer


#: The viewer of every POST of the dashboard: no state-changing route may take ``ViewerDep``.
FormViewerDep = Annotated[Viewer, Depends(checked_form)]


def _safe_next(target: str | None) -> str:
    """Only a dashboard path of this site (no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/runs"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = page("login.html", viewer=None, csrf_token=token, next=_safe_next(next), error=None)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", secure=_secure(request), path=COOKIE_PATH
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    state: StateDep,
    api_key: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/ui/runs",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie, csrf_token):
        raise Forbidden("the sign-in form expired; reload the page", code=ErrorCode.CSRF_TOKEN_INVALID)
    key = api_key.strip()
    try:
        # The API's own check of a bearer (the admin token in constant time, else a live user key).
        caller = await authenticate(request.app, f"Bearer {key}")
    except Unauthorized:
        return page(
            "login.html",
            status_code=401,
            viewer=None,
            csrf_token=cookie,
            next=_safe_next(next),
            error="That key is not a valid API key or the admin token.",
        )
    is_admin = isinstance(caller, Admin)
    key_hash = hash_api_key(key)
    async with state.database.transaction() as session:
        previous = request.cookies.get(SESSION_COOKIE)
        if previous:  # a new sign-in replaces the browser's old session, never keeps both
            await ui_sessions.end(session, token_hash=_sha256(previous))
        token = secrets.token_urlsafe(32)
        await ui_sessions.create(
            session,
            token_hash=_sha256(token),
            key_hash=key_hash,
            is_admin=is_admin,
            ttl_seconds=state.settings.ui_session_seconds,
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=state.settings.ui_session_seconds,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path=COOKIE_PATH,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
async def logout(request: Request, state: StateDep, _: FormViewerDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    async with state.database.transaction() as session:
        await ui_sessions.end(session, token_hash=_sha256(token))
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


@router.get("")
@router.get("/")
async def home() -> Response:
    return RedirectResponse("/ui/runs", status_code=303)
