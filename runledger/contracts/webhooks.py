"""Webhook deliveries: how a sender signs one, and how its payload becomes a graph's input.

A delivery is ``POST /api/v1/webhooks/{source}`` with three headers:

- ``X-Runledger-Delivery``: the sender's id for this delivery (1 to 255 printable characters). A
  re-delivery carries the same id and starts nothing new: the run id is
  ``uuid5(NS, "webhook:{source}:{delivery_id}:{trigger_id}")`` and runs are kept forever.
- ``X-Runledger-Timestamp``: Unix seconds when it was signed; refused outside ±5 minutes, so a
  captured request cannot be replayed later under a fresh delivery id.
- ``X-Runledger-Signature``: ``sha256=`` + hex HMAC-SHA256, keyed by the trigger's secret, of
  ``"{timestamp}.{delivery_id}."`` followed by the raw body bytes.

The signature is checked before the body is parsed. Every trigger registered on the source whose
secret produced the signature fires; the others never learn of the delivery.

This module is pure: the API verifies with it, and senders (and the tests) sign with it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

import jsonpointer

DELIVERY_HEADER = "X-Runledger-Delivery"
TIMESTAMP_HEADER = "X-Runledger-Timestamp"
SIGNATURE_HEADER = "X-Runledger-Signature"

#: How far a delivery's timestamp may be from the server's clock.
TOLERANCE_SECONDS = 300
#: The largest body accepted; a larger one is refused (413) before it is read in full.
MAX_BODY_BYTES = 1_048_576

SOURCE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SIGNATURE_PREFIX = "sha256="


def new_secret() -> str:
    """A trigger's signing secret: shown once at creation, needed verbatim to verify (so stored)."""
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, *, timestamp: int, delivery_id: str, body: bytes) -> str:
    """The ``X-Runledger-Signature`` header value of a delivery."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{delivery_id}.".encode(), hashlib.sha256)
    mac.update(body)
    return SIGNATURE_PREFIX + mac.hexdigest()


def signature_matches(secret: str, *, timestamp: int, delivery_id: str, body: bytes, presented: str) -> bool:
    """Constant-time comparison against the signature ``secret`` would give."""
    expected = signature(secret, timestamp=timestamp, delivery_id=delivery_id, body=body)
    return hmac.compare_digest(expected.encode(), presented.strip().encode())


def valid_delivery_id(delivery_id: str) -> bool:
    return 1 <= len(delivery_id) <= 255 and delivery_id.isprintable()


class InputMappingError(ValueError):
    """A payload lacks a value the trigger's ``input_mapping`` points at."""


def valid_pointer(pointer: str) -> bool:
    """An RFC 6901 JSON pointer: empty (the whole payload) or ``/``-separated reference tokens."""
    try:
        jsonpointer.JsonPointer(pointer)
    except jsonpointer.JsonPointerException:
        return False
    return True


def build_input(fixed: dict[str, Any], mapping: dict[str, str], payload: Any) -> dict[str, Any]:
    """The graph input of one delivery: the trigger's fixed ``input``, then each ``input_mapping``
    field set to the payload value its JSON pointer names (``""`` is the whole payload)."""
    built = dict(fixed)
    for field, pointer in mapping.items():
        try:
            built[field] = jsonpointer.resolve_pointer(payload, pointer)
        except jsonpointer.JsonPointerException as exc:
            raise InputMappingError(f"input.{field}: the payload has no value at {pointer!r}") from exc
    return built
