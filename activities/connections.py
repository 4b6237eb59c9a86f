"""Resolving a run's connections when a tool executes (``tools.connected.CredentialResolver``).

A run carries only connection ids. A provider's connection is the first of: the run's own
``connections`` (given at ``POST /graphs/{id}/runs``), its grant's ``connections``, the graph's
settings (``runledger.graphs.<name>.connections``). Whichever names it, the connection is used only if
it is a live connection of the run's billing account (``db.connections.for_account``): a graph setting
naming another tenant's connection never lends it — the call fails ``connection_missing``, which the
model sees as the tool's error. The connection row holds the credential, encrypted
(``db.connections``). It is read and decrypted here, inside the activity, for the one tool call, and
never leaves the process: not in an activity input or result, not in an event
(NO_SECRETS_IN_HISTORY).

OAuth2: an access token past its ``expires_at`` (or within a minute of it), or one the service
answered 401, is refreshed with ``authlib`` against the connection's token URL, under a row lock (two
calls of one connection refresh it once: the second finds the new token). The new tokens are stored
encrypted. A refresh that fails — or an API key that was rejected — marks the connection
``needs_reauth`` (committed, so the next call fails fast) and the call fails
``connection_needs_reauth``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncSession

from db import connections
from db.secrets import SecretBox
from db.session import Database
from db.trigger_models import Connection
from runledger.tools.connected import ConnectionMissing, ConnectionNeedsReauth, Credential

log = structlog.get_logger(__name__)

#: Refresh a token this close to its expiry rather than let the call fail on it.
EXPIRY_MARGIN = timedelta(seconds=60)
REFRESH_TIMEOUT_SECONDS = 15.0


class _Reauth(Exception):
    """Inside the locked transaction: the connection must be marked after it ends."""


class RunCredentials:
    """The credentials of one run: the connections its start, its grant or its graph's settings map."""

    def __init__(
        self,
        database: Database,
        box: SecretBox | None,
        *,
        billing_account_id: str,
        run_connections: Mapping[str, str] | None = None,
        grant_id: str | None = None,
        graph_connections: Mapping[str, str] | None = None,
    ) -> None:
        self._db = database
        self._box = box
        self._billing_account_id = billing_account_id
        self._run = dict(run_connections or {})
        self._grant_id = grant_id
        self._graph = dict(graph_connections or {})

    async def credential(self, provider: str) -> Credential:
        return await self._resolve(provider, rejected_token=None)

    async def rejected(self, credential: Credential) -> Credential:
        return await self._resolve(credential.provider, rejected_token=credential.token)

    async def _named(self, session: AsyncSession, provider: str) -> tuple[str, str] | None:
        """``(connection id, who named it)`` by precedence: the run's start, its grant, the graph."""
        if provider in self._run:
            return self._run[provider], "the run's start"
        if self._grant_id is not None:
            mapped = await connections.grant_mapping(session, grant_id=self._grant_id)
            if provider in mapped:
                return mapped[provider], "the run's grant"
        if provider in self._graph:
            return self._graph[provider], "the graph's settings"
        return None

    async def _resolve(self, provider: str, *, rejected_token: str | None) -> Credential:
        if self._box is None:
            raise ConnectionMissing(f"this run has no {provider} connection (no secret keys are configured)")
        box = self._box
        try:
            async with self._db.transaction() as session:
                named = await self._named(session, provider)
                if named is None:
                    raise ConnectionMissing(
                        f"this run has no {provider} connection (neither its start, its grant nor its "
                        "graph's settings map one)"
                    )
                connection_id, by = named
                row = await connections.for_account(
                    session,
                    connection_id=connection_id,
                    provider=provider,
                    billing_account_id=self._billing_account_id,
                )
                if row is None:
                    raise ConnectionMissing(
                        f"the {provider} connection {by} names is not a live connection of this run's account"
                    )
                if row.status == "needs_reauth":
                    raise ConnectionNeedsReauth(f"connection {row.id} needs to be authorized again")
                secrets = connections.unseal(box, row)
                current = secrets.get("token") or secrets["access_token"]
                if rejected_token is not None and current == rejected_token:
                    if row.kind == "api_key":
                        raise _Reauth(row.id)
                    current = await self._refresh(session, box, row, secrets)
                elif rejected_token is None and row.kind == "oauth2" and _expired(row.settings):
                    current = await self._refresh(session, box, row, secrets)
                return Credential(
                    provider=provider,
                    connection_id=row.id,
                    token=current,
                    api_base=row.settings.get("api_base"),
                )
        except _Reauth as exc:
            connection_id = str(exc)
            async with self._db.transaction() as session:
                await connections.mark_needs_reauth(session, connection_id=connection_id)
            log.warning("connection_needs_reauth", connection_id=connection_id, provider=provider)
            raise ConnectionNeedsReauth(
                f"the {provider} connection {connection_id} was rejected and cannot be refreshed: "
                "its owner must connect again"
            ) from None

    async def _refresh(
        self, session: AsyncSession, box: SecretBox, row: Connection, secrets: dict[str, str]
    ) -> str:
        refresh_token = secrets.get("refresh_token")
        if not refresh_token:
            raise _Reauth(row.id)
        settings = dict(row.settings)
        client = AsyncOAuth2Client(
            client_id=settings["client_id"],
            client_secret=secrets["client_secret"],
            token={
                "access_token": secrets["access_token"],
                "refresh_token": refresh_token,
                "token_type": "Bearer",
            },
            timeout=REFRESH_TIMEOUT_SECONDS,
        )
        try:
            async with client:
                token: dict[str, Any] = dict(
                    await client.refresh_token(settings["token_url"], refresh_token=refresh_token)
                )
        except Exception as exc:
            # authlib's OAuthError (invalid_grant, ...) or the endpoint's failure: either way the
            # owner must reconnect; the reason is logged without any token.
            log.warning("connection_refresh_failed", connection_id=row.id, error=type(exc).__name__)
            raise _Reauth(row.id) from None
        access = token.get("access_token")
        if not isinstance(access, str) or not access:
            raise _Reauth(row.id)
        renewed = dict(secrets, access_token=access)
        if isinstance(token.get("refresh_token"), str):
            renewed["refresh_token"] = token["refresh_token"]
        expires_at = token.get("expires_at")
        settings["expires_at"] = (
            datetime.fromtimestamp(int(expires_at), tz=UTC).isoformat() if expires_at else None
        )
        await connections.store_tokens(
            session, connection_id=row.id, sealed=connections.seal(box, renewed), settings=settings
        )
        log.info("connection_refreshed", connection_id=row.id)
        return access


def _expired(settings: dict[str, Any]) -> bool:
    expires = settings.get("expires_at")
    if not expires:
        return False
    return datetime.fromisoformat(str(expires)) <= datetime.now(UTC) + EXPIRY_MARGIN
