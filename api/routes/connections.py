"""Connections of the caller: a credential for a tool's external service (create, list, revoke).

``api_key`` stores a static token; ``oauth2`` an access token with its refresh token, token URL and
client credentials (the worker refreshes it, ``activities.connections``). Secrets are write-only:
stored encrypted (``db.secrets``), never returned, never in a run, an event or a workflow input — a
grant maps a tool's provider to the connection's id (``POST /api/v1/grants`` ``connections``).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response, status

from api.deps import StateDep, UserDep
from api.errors import NotFound, Unprocessable
from api.params import ObjectId
from api.schemas import ConnectionListResponse, ConnectionOut, CreateConnectionRequest
from api.webhook_receiver import secret_box
from db import connections
from db.trigger_models import Connection
from runledger.contracts.errors import ErrorCode

router = APIRouter(prefix="/api/v1/connections", tags=["connections"])


def _url(value: str, field: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise Unprocessable(f"{field} must be an http(s) URL")
    return value.rstrip("/")


def connection_out(row: Connection) -> ConnectionOut:
    expires = row.settings.get("expires_at")
    return ConnectionOut(
        connection_id=row.id,
        provider=row.provider,
        kind=row.kind,
        name=row.name,
        status=row.status,
        api_base=row.settings.get("api_base"),
        token_url=row.settings.get("token_url"),
        client_id=row.settings.get("client_id"),
        expires_at=datetime.fromisoformat(expires) if expires else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConnectionOut)
async def create_connection(
    body: CreateConnectionRequest, principal: UserDep, state: StateDep
) -> ConnectionOut:
    settings: dict[str, str | None] = {}
    if body.api_base is not None:
        settings["api_base"] = _url(body.api_base, "api_base")
    if body.kind == "api_key":
        if body.api_key is None or body.oauth2 is not None:
            raise Unprocessable("kind api_key takes api_key (and no oauth2)")
        secrets = {"token": body.api_key}
    else:
        oauth = body.oauth2
        if oauth is None or body.api_key is not None:
            raise Unprocessable("kind oauth2 takes oauth2 (and no api_key)")
        if oauth.expires_at is not None and oauth.expires_at.tzinfo is None:
            raise Unprocessable("oauth2.expires_at must carry a time zone")
        settings |= {
            "token_url": _url(oauth.token_url, "oauth2.token_url"),
            "client_id": oauth.client_id,
            "scope": oauth.scope,
            "expires_at": oauth.expires_at.isoformat() if oauth.expires_at else None,
        }
        secrets = {"access_token": oauth.access_token, "client_secret": oauth.client_secret}
        if oauth.refresh_token is not None:
            secrets["refresh_token"] = oauth.refresh_token
    sealed = connections.seal(secret_box(state), secrets)
    async with state.database.transaction() as session:
        row = await connections.insert_connection(
            session,
            connection=Connection(
                owner_user_id=principal.user_id,
                provider=body.provider,
                kind=body.kind,
                name=body.name,
                settings=settings,
                credentials_encrypted=sealed,
            ),
        )
    return connection_out(row)


@router.get("", response_model=ConnectionListResponse)
async def list_connections(principal: UserDep, state: StateDep) -> ConnectionListResponse:
    async with state.database.transaction() as session:
        rows = await connections.list_connections(session, owner_user_id=principal.user_id)
    return ConnectionListResponse(connections=[connection_out(r) for r in rows])


@router.delete("/{connection_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def revoke_connection(connection_id: ObjectId, principal: UserDep, state: StateDep) -> Response:
    not_found = NotFound(f"connection {connection_id} not found", code=ErrorCode.CONNECTION_NOT_FOUND)
    async with state.database.transaction() as session:
        row = await connections.get_connection(
            session, connection_id=connection_id, owner_user_id=principal.user_id
        )
        if row is None:
            raise not_found
        await connections.revoke(session, connection_id=connection_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
