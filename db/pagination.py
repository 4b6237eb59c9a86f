"""Opaque keyset cursors: base64 of a small JSON list, so clients cannot depend on their shape."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


class InvalidCursorError(ValueError):
    pass


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, arity: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursorError("cursor is not valid") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidCursorError("cursor is not valid")
    return values
