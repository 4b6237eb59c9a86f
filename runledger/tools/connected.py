"""Credentials for tools that act on an external service for a run's owner (connections).

A tool declares the provider it needs (``ToolSpec.provider``); the run's grant maps that provider to
a connection id; the worker binds a :class:`CredentialResolver` for the run, and the tool asks it for
the credential only when it executes (``await credential("github")``). The credential lives in the
activity's memory for that call only: it is never an argument, a result, an event or a workflow
input (NO_SECRETS_IN_HISTORY). When the service rejects it (401), the tool calls :func:`rejected`:
an OAuth2 connection is refreshed once; a connection that cannot be refreshed is marked
``needs_reauth`` and the call fails ``connection_needs_reauth``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Credential:
    provider: str
    connection_id: str
    #: The bearer token (an API key, or an OAuth2 access token). Kept out of repr.
    token: str = field(repr=False)
    #: The service's API base URL when the connection names one (else the tool's default).
    api_base: str | None = None


class ConnectionMissing(Exception):
    """The run has no (live) connection for the provider the tool needs."""


class ConnectionNeedsReauth(Exception):
    """The connection's credential was rejected and cannot be refreshed: its owner must reconnect."""


class CredentialResolver(Protocol):
    async def credential(self, provider: str) -> Credential: ...

    async def rejected(self, credential: Credential) -> Credential:
        """A fresh credential after the service rejected ``credential``, or ``ConnectionNeedsReauth``."""
        ...


_resolver: ContextVar[CredentialResolver | None] = ContextVar("runledger_tool_credentials", default=None)


@contextmanager
def bind_credentials(resolver: CredentialResolver | None) -> Iterator[None]:
    token = _resolver.set(resolver)
    try:
        yield
    finally:
        _resolver.reset(token)


def _bound() -> CredentialResolver:
    resolver = _resolver.get()
    if resolver is None:
        raise ConnectionMissing("no connections are available to this call")
    return resolver


async def credential(provider: str) -> Credential:
    return await _bound().credential(provider)


async def rejected(previous: Credential) -> Credential:
    return await _bound().rejected(previous)
