"""API keys: a user's own (``/api/v1/me/api-keys``: create — the key shown once —, list — never the
key —, revoke) and an admin's view of any user's keys (list, revoke one or all). A revoked key is
refused from the next request on: every request looks its key up (``db.accounts.principal_for_key``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from api.deps import AdminDep, StateDep, UserDep
from api.errors import NotFound
from api.keys import display_prefix, hash_api_key, new_api_key
from api.params import ObjectId
from api.schemas import ApiKeyCreated, ApiKeyListResponse, ApiKeyOut, CreateApiKeyRequest
from db import accounts, api_keys
from db.models import ApiKey
from db.session import Database
from runledger.contracts.errors import ErrorCode

router = APIRouter(prefix="/api/v1", tags=["api-keys"])


def key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        key_id=key.id,
        name=key.name,
        key_prefix=key.key_prefix,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


def _key_not_found(key_id: str) -> NotFound:
    return NotFound(f"API key {key_id} not found", code=ErrorCode.API_KEY_NOT_FOUND)


@router.post("/me/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_key(
    principal: UserDep, state: StateDep, body: Annotated[CreateApiKeyRequest | None, Body()] = None
) -> ApiKeyCreated:
    """A new key for the caller; the body (``{name?}``) is optional."""
    secret = new_api_key()
    async with state.database.transaction() as session:
        key = await api_keys.add_key(
            session,
            user_id=principal.user_id,
            name=None if body is None else body.name,
            key_prefix=display_prefix(secret),
            key_hash=hash_api_key(secret),
        )
    return ApiKeyCreated(**key_out(key).model_dump(), api_key=secret)


@router.get("/me/api-keys", response_model=ApiKeyListResponse)
async def list_keys(principal: UserDep, state: StateDep) -> ApiKeyListResponse:
    async with state.database.transaction() as session:
        rows = await api_keys.list_keys(session, user_id=principal.user_id)
    return ApiKeyListResponse(api_keys=[key_out(k) for k in rows])


async def _revoke(database: Database, user_id: str, key_id: str) -> None:
    async with database.transaction() as session:
        if await api_keys.get_key(session, user_id=user_id, key_id=key_id) is None:
            raise _key_not_found(key_id)
        await api_keys.revoke_keys(session, user_id=user_id, key_id=key_id)


@router.delete("/me/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def revoke_key(key_id: ObjectId, principal: UserDep, state: StateDep) -> Response:
    """Revoke one of the caller's keys (the one in use too); another user's key is 404."""
    await _revoke(state.database, principal.user_id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _user_exists(database: Database, user_id: str) -> None:
    async with database.transaction() as session:
        if await accounts.get_principal(session, user_id=user_id) is None:
            raise NotFound(f"user {user_id} not found", code=ErrorCode.USER_NOT_FOUND)


@router.get("/admin/users/{user_id}/api-keys", response_model=ApiKeyListResponse)
async def admin_list_keys(user_id: ObjectId, state: StateDep, _: AdminDep) -> ApiKeyListResponse:
    await _user_exists(state.database, user_id)
    async with state.database.transaction() as session:
        rows = await api_keys.list_keys(session, user_id=user_id)
    return ApiKeyListResponse(api_keys=[key_out(k) for k in rows])


@router.delete(
    "/admin/users/{user_id}/api-keys", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
async def admin_revoke_all(user_id: ObjectId, state: StateDep, _: AdminDep) -> Response:
    """Revoke every key of the user (a leaked account): each refused from the next request on."""
    await _user_exists(state.database, user_id)
    async with state.database.transaction() as session:
        await api_keys.revoke_keys(session, user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/admin/users/{user_id}/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def admin_revoke_key(user_id: ObjectId, key_id: ObjectId, state: StateDep, _: AdminDep) -> Response:
    await _revoke(state.database, user_id, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
