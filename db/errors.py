"""Typed errors raised by repository functions; the API maps them to HTTP codes."""

from __future__ import annotations


class DbError(Exception):
    """Base of database-layer errors."""


class NotFoundError(DbError):
    def __init__(self, what: str, key: str) -> None:
        super().__init__(f"{what} {key} not found")
        self.what = what
        self.key = key


class TopupConflictError(DbError):
    """The top-up reference exists with another amount or account."""

    def __init__(self, reference: str) -> None:
        super().__init__(f"top-up reference {reference!r} was already used with another amount or account")
        self.reference = reference
