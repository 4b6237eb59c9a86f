"""Users, their API keys (stored hashed) and their billing accounts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiKey, BillingAccount, User


@dataclass(frozen=True)
class Principal:
    """Who a valid API key belongs to."""

    user_id: str
    billing_account_id: str


async def create_user(
    session: AsyncSession, *, name: str, key_prefix: str, key_hash: str, user_id: str | None = None
) -> Principal:
    """Create a user with one billing account and one API key, in the caller's transaction."""
    user = User(name=name) if user_id is None else User(id=user_id, name=name)
    session.add(user)
    await session.flush()
    account = BillingAccount(owner_user_id=user.id)
    session.add(account)
    session.add(ApiKey(user_id=user.id, key_prefix=key_prefix, key_hash=key_hash))
    await session.flush()
    return Principal(user_id=user.id, billing_account_id=account.id)


async def get_principal(session: AsyncSession, *, user_id: str) -> Principal | None:
    account_id = (
        await session.execute(select(BillingAccount.id).where(BillingAccount.owner_user_id == user_id))
    ).scalar_one_or_none()
    return None if account_id is None else Principal(user_id=user_id, billing_account_id=account_id)


# The lookup of every authenticated request: one statement, so the API answers it on the statement
# pool (autocommit, one round trip) rather than in a transaction of its own.
_PRINCIPAL_FOR_KEY_SQL = """
SELECT k.user_id, a.id FROM api_keys k JOIN billing_accounts a ON a.owner_user_id = k.user_id
WHERE k.key_hash = %(key_hash)s AND k.revoked_at IS NULL
"""


async def principal_for_key(conn: psycopg.AsyncConnection[Any], *, key_hash: str) -> Principal | None:
    """The live key's owner and their billing account (None for an unknown or revoked key); for
    :meth:`db.session.Database.single_statement`."""
    cursor = await conn.execute(_PRINCIPAL_FOR_KEY_SQL, {"key_hash": key_hash})
    row = await cursor.fetchone()
    return None if row is None else Principal(user_id=str(row[0]), billing_account_id=str(row[1]))


async def account_exists(session: AsyncSession, *, billing_account_id: str) -> bool:
    found = (
        await session.execute(select(BillingAccount.id).where(BillingAccount.id == billing_account_id))
    ).scalar_one_or_none()
    return found is not None


async def principal_for_account(session: AsyncSession, *, billing_account_id: str) -> Principal | None:
    """The owner of a billing account, as the principal that acts for it (an admin's replay)."""
    owner = (
        await session.execute(
            select(BillingAccount.owner_user_id).where(BillingAccount.id == billing_account_id)
        )
    ).scalar_one_or_none()
    return None if owner is None else Principal(user_id=owner, billing_account_id=billing_account_id)


@dataclass(frozen=True)
class AccountSummary:
    billing_account_id: str
    owner_name: str
    balance_credits: int


async def list_accounts(session: AsyncSession) -> list[AccountSummary]:
    """Every billing account with its owner's name (the admin's account filter)."""
    rows = await session.execute(
        select(BillingAccount.id, User.name, BillingAccount.balance_credits)
        .join(User, User.id == BillingAccount.owner_user_id)
        .order_by(User.name, BillingAccount.id)
    )
    return [AccountSummary(str(a), n, int(b)) for a, n, b in rows.all()]
