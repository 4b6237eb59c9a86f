"""Connections: credentials tools use on an owner's behalf, stored encrypted (SECRETS_ENCRYPTED_AT_REST).

The secret part of a connection (an API key; an OAuth2 access token, refresh token and client
secret) is one Fernet token of a JSON object (``db.secrets``); nothing secret is in any other column.
A run never carries a credential: a tool's provider is mapped to a connection id — by the run's own
start (``graph_runs.connections``), its grant (``execution_grants.connections``) or the graph's
settings — and the worker reads the connection when the tool executes, only if it belongs to the
run's billing account (:func:`for_account`).
Revoking is soft (the row stays, ``status='revoked'``).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import BillingAccount
from db.secrets import SecretBox
from db.trigger_models import Connection, ExecutionGrant


def seal(box: SecretBox, secrets: dict[str, str]) -> str:
    return box.encrypt(json.dumps(secrets, sort_keys=True))


def unseal(box: SecretBox, connection: Connection) -> dict[str, str]:
    opened: dict[str, str] = json.loads(box.decrypt(connection.credentials_encrypted))
    return opened


async def insert_connection(session: AsyncSession, *, connection: Connection) -> Connection:
    session.add(connection)
    await session.flush()
    await session.refresh(connection)
    return connection


async def list_connections(session: AsyncSession, *, owner_user_id: str) -> list[Connection]:
    stmt = (
        select(Connection)
        .where(Connection.owner_user_id == owner_user_id, Connection.status != "revoked")
        .order_by(Connection.created_at.desc(), Connection.id.desc())
    )
    return list((await session.execute(stmt)).scalars())


async def get_connection(
    session: AsyncSession, *, connection_id: str, owner_user_id: str
) -> Connection | None:
    stmt = select(Connection).where(
        Connection.id == connection_id,
        Connection.owner_user_id == owner_user_id,
        Connection.status != "revoked",
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def revoke(session: AsyncSession, *, connection_id: str) -> None:
    await session.execute(
        update(Connection)
        .where(Connection.id == connection_id)
        .values(status="revoked", revoked_at=func.now(), updated_at=func.now())
    )


async def grant_mapping(session: AsyncSession, *, grant_id: str) -> dict[str, str]:
    """The provider -> connection id map of a grant (empty when it has none or does not exist)."""
    grant = await session.get(ExecutionGrant, grant_id)
    return {} if grant is None else dict(grant.connections)


async def for_account(
    session: AsyncSession, *, connection_id: str, provider: str, billing_account_id: str
) -> Connection | None:
    """The connection, if it is a live ``provider`` connection of the billing account's owner —
    whoever named it, a run of one account never gets another's credential; locked, so two tool
    calls of one connection refresh it one at a time."""
    stmt = (
        select(Connection)
        .join(BillingAccount, BillingAccount.owner_user_id == Connection.owner_user_id)
        .where(
            Connection.id == connection_id,
            Connection.provider == provider,
            Connection.status != "revoked",
            BillingAccount.id == billing_account_id,
        )
        .with_for_update(of=Connection)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def store_tokens(
    session: AsyncSession, *, connection_id: str, sealed: str, settings: dict[str, Any]
) -> None:
    await session.execute(
        update(Connection)
        .where(Connection.id == connection_id)
        .values(credentials_encrypted=sealed, settings=settings, status="active", updated_at=func.now())
    )


async def mark_needs_reauth(session: AsyncSession, *, connection_id: str) -> None:
    await session.execute(
        update(Connection)
        .where(Connection.id == connection_id, Connection.status == "active")
        .values(status="needs_reauth", updated_at=func.now())
    )


async def rotate_secrets(session: AsyncSession, *, box: SecretBox) -> int:
    """Re-encrypt every connection's credentials (revoked ones too) under the newest key."""
    rows = (
        await session.execute(select(Connection.id, Connection.credentials_encrypted).with_for_update())
    ).all()
    for connection_id, token in rows:
        await session.execute(
            update(Connection)
            .where(Connection.id == connection_id)
            .values(credentials_encrypted=box.rotate(token))
        )
    return len(rows)


async def owned_ids(session: AsyncSession, *, owner_user_id: str, ids: list[str]) -> set[str]:
    """Which of ``ids`` are the owner's live connections."""
    if not ids:
        return set()
    stmt = select(Connection.id).where(
        Connection.id.in_(ids), Connection.owner_user_id == owner_user_id, Connection.status != "revoked"
    )
    return set((await session.execute(stmt)).scalars())


async def usable_for_run(session: AsyncSession, *, owner_user_id: str, mapping: dict[str, str]) -> set[str]:
    """Which providers of ``mapping`` (provider -> connection id) name a live connection of the
    owner with that provider."""
    if not mapping:
        return set()
    stmt = select(Connection.id, Connection.provider).where(
        Connection.id.in_(list(mapping.values())),
        Connection.owner_user_id == owner_user_id,
        Connection.status != "revoked",
    )
    found = {(cid, provider) for cid, provider in (await session.execute(stmt)).all()}
    return {provider for provider, cid in mapping.items() if (cid, provider) in found}
