"""Dev-stack state that must survive restarts: the admin token and the demo user.

Contract:
- ``admin_token(data_dir, configured)`` returns the configured token, or the one generated on the first
  ``runledger up`` and kept in ``<data_dir>/admin_token`` (mode 0600).
- ``ensure_demo_user(database, data_dir, credits)`` returns the demo user of ``<data_dir>/demo.json``
  (mode 0600) when its key still authenticates that user in the database, and otherwise creates a new
  user and rewrites the file. The initial top-up uses the reference ``demo:initial:{user_id}``, so
  calling it on every start credits the account once.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from api.keys import display_prefix, hash_api_key, new_api_key
from db.accounts import create_user, principal_for_key
from db.errors import TopupConflictError
from db.ledger import get_balance, record_topup
from db.session import Database

#: The dev stack's RUNLEDGER_SECRET_KEYS (Fernet keys, newest first), like the admin token.
SECRET_KEYS_FILE = "secret_keys"
NOTIFY_KEY_FILE = "notify_signing_key"
ADMIN_TOKEN_FILE = "admin_token"
DEMO_FILE = "demo.json"
DEMO_USER_NAME = "demo"


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    billing_account_id: str
    api_key: str


@dataclass(frozen=True)
class DemoState:
    user: DemoUser
    created: bool
    balance_credits: int
    #: Set when the initial top-up reference exists with another amount (RUNLEDGER_DEMO_CREDITS changed).
    topup_note: str | None = None


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only, replacing it atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def admin_token(data_dir: Path, configured: str | None) -> str:
    if configured:
        return configured
    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    return token


def secret_keys(data_dir: Path, configured: str | None) -> str:
    """RUNLEDGER_SECRET_KEYS of the dev stack: as configured, else the data dir's key file (one
    Fernet key, generated the first time; a key list written into it by hand is kept)."""
    if configured:
        return configured
    path = data_dir / SECRET_KEYS_FILE
    if path.exists():
        keys = path.read_text().strip()
        if keys:
            return keys
    from cryptography.fernet import Fernet

    keys = Fernet.generate_key().decode()
    write_private(path, keys + "\n")
    return keys


def notify_signing_key(data_dir: Path, configured: str | None) -> str:
    """RUNLEDGER_NOTIFY_SIGNING_KEY of the dev stack: as configured, else generated once into the
    data dir (it derives each account's notification secret, so it must stay the same)."""
    if configured:
        return configured
    path = data_dir / NOTIFY_KEY_FILE
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    key = secrets.token_urlsafe(32)
    write_private(path, key + "\n")
    return key


def _read_demo_file(path: Path) -> DemoUser | None:
    try:
        raw = json.loads(path.read_text())
        return DemoUser(
            user_id=str(raw["user_id"]),
            billing_account_id=str(raw["billing_account_id"]),
            api_key=str(raw["api_key"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


async def ensure_demo_user(database: Database, data_dir: Path, credits: int) -> DemoState:
    path = data_dir / DEMO_FILE
    saved = _read_demo_file(path)
    user: DemoUser | None = None
    if saved is not None:
        key_hash = hash_api_key(saved.api_key)
        principal = await database.single_statement(lambda conn: principal_for_key(conn, key_hash=key_hash))
        # A file that outlived its database (or a revoked key) is replaced, never trusted.
        if principal is not None and principal.user_id == saved.user_id:
            user = DemoUser(principal.user_id, principal.billing_account_id, saved.api_key)
    created = user is None
    if user is None:
        key = new_api_key()
        async with database.transaction() as session:
            principal = await create_user(
                session, name=DEMO_USER_NAME, key_prefix=display_prefix(key), key_hash=hash_api_key(key)
            )
        user = DemoUser(principal.user_id, principal.billing_account_id, key)
    if user != saved:
        write_private(path, json.dumps(asdict(user), indent=2) + "\n")

    note = None
    if credits > 0:
        try:
            async with database.transaction() as session:
                await record_topup(
                    session,
                    billing_account_id=user.billing_account_id,
                    amount=credits,
                    reference=f"demo:initial:{user.user_id}",
                )
        except TopupConflictError:
            note = "the initial demo top-up was made earlier with another RUNLEDGER_DEMO_CREDITS; kept as is"
    async with database.transaction() as session:
        balance = await get_balance(session, billing_account_id=user.billing_account_id)
    return DemoState(user=user, created=created, balance_credits=balance, topup_note=note)
