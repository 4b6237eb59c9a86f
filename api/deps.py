"""Request dependencies: the process's shared objects and the caller's identity."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from api.errors import Forbidden, Unauthorized
from api.keys import hash_api_key
from api.webhook_audit import RefusalBudget
from db import accounts
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


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.runledger
    return state


StateDep = Annotated[AppState, Depends(get_state)]

_bearer = HTTPBearer(auto_error=False)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _is_admin(state: AppState, token: str) -> bool:
    admin = state.settings.admin_token
    return admin is not None and hmac.compare_digest(admin.get_secret_value().encode(), token.encode())


async def require_user(state: StateDep, credentials: BearerDep) -> Principal:
    if credentials is None:
        raise Unauthorized("missing bearer API key")
    token = credentials.credentials
    if _is_admin(state, token):
        raise Unauthorized("the admin token does not identify a user; use a user's API key")
    async with state.database.transaction() as session:
        principal = await accounts.principal_for_key(session, key_hash=hash_api_key(token))
    if principal is None:
        raise Unauthorized("invalid API key")
    return principal


async def require_admin(state: StateDep, credentials: BearerDep) -> None:
    if credentials is None:
        raise Unauthorized("missing bearer admin token")
    if not _is_admin(state, credentials.credentials):
        raise Forbidden("admin token required")


UserDep = Annotated[Principal, Depends(require_user)]
AdminDep = Annotated[None, Depends(require_admin)]
