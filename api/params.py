"""Parameter types of the boundary, shared by every route, so each rule is written once.

- :data:`ObjectId`: a path id is a canonical UUID (``8-4-4-4-12`` hex; ``urn:uuid:``, braces or no
  dashes are refused with 422 — Python's ``uuid.UUID`` reads them, Postgres does not), lower-cased.
- :data:`Timestamp`: a datetime Postgres can store, i.e. within years 1..9999 once moved to UTC.
- :data:`Limit`, :data:`EventSeq`: integers within their range (and always within BIGINT).
- :func:`keyset`: an opaque list cursor decoded into typed keys, or 422 ``invalid_cursor``.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import AfterValidator

from api.boundary import INT_MAX
from api.errors import Unprocessable
from db.pagination import InvalidCursorError, decode_cursor
from runledger.contracts.errors import ErrorCode

CANONICAL_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def storable_datetime(value: datetime) -> datetime:
    """``value`` if Postgres can store it; a time zone that moves it past year 9999 (or before
    year 1) in UTC is refused here rather than by Postgres."""
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("must lie between years 1 and 9999 in UTC") from None
    return value


ObjectId = Annotated[
    str,
    Path(pattern=CANONICAL_UUID, description="a canonical UUID (8-4-4-4-12 hex digits)"),
    AfterValidator(str.lower),
]
Timestamp = Annotated[datetime, AfterValidator(storable_datetime)]
Limit = Annotated[int, Query(ge=1, le=100)]
#: A run event's sequence number, as ``?after=`` (``Last-Event-ID`` is read by :func:`event_seq`).
EventSeq = Annotated[int, Query(ge=0, le=INT_MAX)]


def event_seq(value: str, *, name: str) -> int:
    text = value.strip()
    if not text.isdigit() or len(text) > 19 or int(text) > INT_MAX:
        raise Unprocessable(f"{name} must be an event id (an integer from 0 to 2^63-1)")
    return int(text)


KeyKind = Literal["int", "timestamp", "uuid"]


def keyset(cursor: str | None, kinds: tuple[KeyKind, ...]) -> tuple[object, ...] | None:
    """The typed keys of a cursor this API issued: ``int`` (BIGINT), ``timestamp`` (ISO-8601,
    storable), ``uuid`` (canonical). Anything else is 422 ``invalid_cursor``."""
    if cursor is None:
        return None
    try:
        values = decode_cursor(cursor, arity=len(kinds))
        return tuple(_key(kind, value) for kind, value in zip(kinds, values, strict=True))
    except (InvalidCursorError, ValueError, TypeError, OverflowError) as exc:
        raise Unprocessable("cursor is not valid", code=ErrorCode.INVALID_CURSOR) from exc


def _key(kind: KeyKind, value: object) -> object:
    if kind == "int":
        if type(value) is not int or not 0 <= value <= INT_MAX:
            raise ValueError("not a BIGINT key")
        return value
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("not a string key")
    if kind == "timestamp":
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("a timestamp key carries its zone")
        return storable_datetime(parsed)
    if not re.fullmatch(CANONICAL_UUID, value):
        raise ValueError("not a canonical UUID")
    return str(uuid.UUID(value))
