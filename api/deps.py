"""Request dependencies: the process's shared objects and the caller's identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from api.boundary import AUTH_SCOPE_KEY, Caller, authenticate, authorize
from api.webhook_audit import RefusalBudget
from db.accounts import Principal
from db.notify import RunEventListener
from db.secrets import SecretBox
from db.session import Database
from runledger.config import Settings


@dataclass
class AppState:
    settings: Settings
    database: Database
    temporal: Client
    events: RunEventListener
    #: Opens and seals stored secrets; None when RUNLEDGER_SECRET_KEYS is not set (then the routes
    #: that need a secret answer 503 ``secret_keys_missing``).
    secrets: SecretBox | None = None
    webhook_refusals: RefusalBudget = field(default_factory=lambda: RefusalBudget(120))


async def get_state(request: Request) -> AppState:
    # async although it awaits nothing: FastAPI runs a plain ``def`` dependency in its thread
    # pool, a thread hand-off on every request (py-spy of the API under a burst of starts: 4 %).
    state: AppState = request.app.state.runledger
    return state


StateDep = Annotated[AppState, Depends(get_state)]

_bearer = HTTPBearer(auto_error=False)
#: Declares the bearer scheme in the OpenAPI document; the boundary reads the header itself.
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def _caller(request: Request) -> Caller:
    """Who the boundary authenticated (before the body was read); computed here only for a route
    the boundary did not see as needing a caller, e.g. one mounted after it was built."""
    cached = request.scope.get(AUTH_SCOPE_KEY)
    if cached is None:
        cached = await authenticate(request.app, request.headers.get("authorization"))
        request.scope[AUTH_SCOPE_KEY] = cached
    caller: Caller = cached
    return caller


async def require_user(request: Request, _: BearerDep) -> Principal:
    caller = await _caller(request)
    authorize(caller, "user")
    assert isinstance(caller, Principal)
    return caller


async def require_admin(request: Request, _: BearerDep) -> None:
    authorize(await _caller(request), "admin")


UserDep = Annotated[Principal, Depends(require_user)]
AdminDep = Annotated[None, Depends(require_admin)]
