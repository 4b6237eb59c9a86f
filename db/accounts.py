"""Users, their API keys (stored hashed) and their billing accounts."""

from __future__ import annotations

from dataclasses import dataclass

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


async def principal_for_key(session: AsyncSession, *, key_hash: str) -> Principal | None:
    row = (
        await session.execute(
            select(ApiKey.user_id, BillingAccount.id)
            .join(BillingAccount, BillingAccount.owner_user_id == ApiKey.user_id)
            .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        )
    ).one_or_none()
    return None if row is None else Principal(user_id=row[0], billing_account_id=row[1])


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
