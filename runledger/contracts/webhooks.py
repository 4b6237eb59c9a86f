"""Webhook deliveries: how each kind of sender signs one, and how its payload becomes a graph's input.

A delivery is ``POST /api/v1/webhooks/{source}`` with the raw body signed the way its sender signs,
chosen by the trigger's ``kind``:

- ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed by the secret>``;
  delivery key ``X-GitHub-Delivery``; event ``X-GitHub-Event`` (``ping`` starts nothing), matched by
  a trigger's ``events`` as ``issues`` (any action) or ``issues.opened`` (the payload's ``action``).
  GitHub's signature carries no timestamp, so a replay is stopped only by the permanent dedupe.
- ``stripe``: ``Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">`` (several
  ``v1`` entries allowed: Stripe sends one per active secret), keyed by the whole ``whsec_…`` secret;
  delivery key the event ``id``; event its ``type``.
- ``standard`` (the default): Standard Webhooks — ``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` (space-separated, any
  may match), keyed by the base64 bytes of a ``whsec_`` secret; verified by the ``standardwebhooks``
  package; delivery key ``webhook-id``; event the payload's ``type`` when it has one.

Timestamps (Stripe, Standard Webhooks) must be within ``TOLERANCE_SECONDS`` of the server's clock in
either direction. The run id of a delivery is ``uuid5(NS, "webhook:{source}:{delivery key}:
{trigger_id}")`` (SPEC §2) and runs are kept forever, so a re-delivery starts nothing new.

Signatures are checked before the body is parsed, in constant time, only against the triggers of the
source. The cost of one check is bounded whatever the caller sends: one HMAC of a body of at most
``MAX_BODY_BYTES`` per trigger (at most ``MAX_TRIGGERS_PER_SOURCE``), compared with at most
``MAX_SIGNATURES`` presented signatures, from a header of at most ``MAX_HEADER_CHARS``.

This module is pure: the API verifies with it, and ``runledger webhooks send`` signs with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import jsonpointer
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, WebhookVerificationError

Kind = Literal["github", "stripe", "standard"]
KINDS: tuple[Kind, ...] = ("github", "stripe", "standard")

GITHUB_SIGNATURE_HEADER = "X-Hub-Signature-256"
GITHUB_DELIVERY_HEADER = "X-GitHub-Delivery"
GITHUB_EVENT_HEADER = "X-GitHub-Event"
GITHUB_PING = "ping"
STRIPE_SIGNATURE_HEADER = "Stripe-Signature"
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"

#: How far a delivery's timestamp may be from the server's clock, either way.
TOLERANCE_SECONDS = 300
#: The largest body accepted; a larger one is refused (413) before it is read in full.
MAX_BODY_BYTES = 1_048_576
#: Live triggers one source may have (each costs one HMAC of every delivery).
MAX_TRIGGERS_PER_SOURCE = 20
#: Signatures one header may present; a header with more is refused without computing any.
MAX_SIGNATURES = 8
MAX_HEADER_CHARS = 2_048

SOURCE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Verdict(StrEnum):
    SIGNED = "signed"
    #: Not signed by this secret (or no usable signature).
    INVALID = "invalid_signature"
    #: The timestamp is outside the tolerance (checked before the signature).
    STALE = "stale_timestamp"


def new_secret(kind: Kind) -> str:
    """A generated signing secret, in the format the kind's senders use; shown once at creation."""
    if kind == "github":
        return secrets.token_hex(32)
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_problem(kind: Kind, secret: str) -> str | None:
    """Why ``secret`` cannot sign deliveries of ``kind`` (None: it can)."""
    if not 16 <= len(secret) <= 255 or not secret.isprintable() or not secret.isascii():
        return "secret must be 16 to 255 printable ASCII characters"
    if kind == "standard":
        raw = secret.removeprefix("whsec_")
        try:
            key = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return "a Standard Webhooks secret is whsec_ followed by base64"
        if len(key) < 16:
            return "a Standard Webhooks secret must hold at least 16 bytes"
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """``headers`` are lower-cased names; an over-long value counts as absent."""
    value = headers.get(name.lower())
    if value is None or len(value) > MAX_HEADER_CHARS:
        return None
    return value


def _fresh(timestamp: str, now: float) -> bool | None:
    """True/False: within the tolerance or not; None: not a Unix-seconds integer."""
    if not timestamp.isdigit() or len(timestamp) > 12:
        return None
    return abs(now - int(timestamp)) <= TOLERANCE_SECONDS


def verify(kind: Kind, secret: str, headers: Mapping[str, str], body: bytes, *, now: float) -> Verdict:
    """Whether ``secret`` signed this delivery, the way senders of ``kind`` sign."""
    if kind == "github":
        presented = _header(headers, GITHUB_SIGNATURE_HEADER)
        if presented is None or not presented.startswith("sha256="):
            return Verdict.INVALID
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        digest = presented.removeprefix("sha256=").strip().lower()
        ok = _HEX_SHA256.match(digest) is not None and hmac.compare_digest(expected, digest)
        return Verdict.SIGNED if ok else Verdict.INVALID
    if kind == "stripe":
        return _verify_stripe(secret, _header(headers, STRIPE_SIGNATURE_HEADER), body, now)
    return _verify_standard(secret, headers, body, now)


def _verify_stripe(secret: str, header: str | None, body: bytes, now: float) -> Verdict:
    if header is None:
        return Verdict.INVALID
    items = header.split(",")
    if len(items) > 2 * MAX_SIGNATURES:
        return Verdict.INVALID
    pairs = [item.strip().partition("=") for item in items]
    stamps = [value for key, _, value in pairs if key == "t"]
    signatures = [value.strip().lower() for key, _, value in pairs if key == "v1"]
    if len(stamps) != 1 or not signatures or len(signatures) > MAX_SIGNATURES:
        return Verdict.INVALID
    fresh = _fresh(stamps[0], now)
    if fresh is None:
        return Verdict.INVALID
    if not fresh:
        return Verdict.STALE
    mac = hmac.new(secret.encode(), f"{stamps[0]}.".encode(), hashlib.sha256)
    mac.update(body)
    expected = mac.hexdigest()
    # Every presented signature is compared (no early exit on the first that matches).
    matched = [hmac.compare_digest(expected, s) for s in signatures if _HEX_SHA256.match(s)]
    return Verdict.SIGNED if any(matched) else Verdict.INVALID


def _verify_standard(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> Verdict:
    msg_id = _header(headers, STANDARD_ID_HEADER)
    timestamp = _header(headers, STANDARD_TIMESTAMP_HEADER)
    signature = _header(headers, STANDARD_SIGNATURE_HEADER)
    if not msg_id or not timestamp or not signature:
        return Verdict.INVALID
    entries = signature.split(" ")
    if len(entries) > MAX_SIGNATURES or any(entry.count(",") != 1 for entry in entries):
        return Verdict.INVALID  # the package raises on these; refuse them before it does
    fresh = _fresh(timestamp, now)
    if fresh is None:
        return Verdict.INVALID
    if not fresh:
        return Verdict.STALE
    given = {
        STANDARD_ID_HEADER: msg_id,
        STANDARD_TIMESTAMP_HEADER: timestamp,
        STANDARD_SIGNATURE_HEADER: signature,
    }
    try:
        Webhook(secret).verify(body, given, json_parse=False)
    except (WebhookVerificationError, EmptyWebhookSecretError, ValueError, binascii.Error):
        # ValueError covers a body that is not UTF-8 (the package signs text) and bad base64.
        return Verdict.INVALID
    return Verdict.SIGNED


def sign_headers(
    kind: Kind, secret: str, body: bytes, *, delivery_key: str, event: str | None, now: float
) -> dict[str, str]:
    """The headers a sender of ``kind`` puts on ``body`` (``runledger webhooks send``). A Stripe
    delivery's key and event are in its body (``id``, ``type``), not in a header."""
    if kind == "github":
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {
            GITHUB_SIGNATURE_HEADER: f"sha256={digest}",
            GITHUB_DELIVERY_HEADER: delivery_key,
            GITHUB_EVENT_HEADER: event or "push",
        }
    if kind == "stripe":
        stamp = int(now)
        mac = hmac.new(secret.encode(), f"{stamp}.".encode(), hashlib.sha256)
        mac.update(body)
        return {STRIPE_SIGNATURE_HEADER: f"t={stamp},v1={mac.hexdigest()}"}
    when = datetime.fromtimestamp(int(now), tz=UTC)
    return {
        STANDARD_ID_HEADER: delivery_key,
        STANDARD_TIMESTAMP_HEADER: str(int(now)),
        STANDARD_SIGNATURE_HEADER: Webhook(secret).sign(delivery_key, when, body.decode()),
    }


class DeliveryError(ValueError):
    """A signed delivery lacks what its kind must carry (a delivery key, an event type)."""


def delivery_key(kind: Kind, headers: Mapping[str, str], payload: Any) -> str:
    """The sender's own id of this delivery (SPEC §2)."""
    if kind == "github":
        key, where = _header(headers, GITHUB_DELIVERY_HEADER), GITHUB_DELIVERY_HEADER
    elif kind == "stripe":
        found = payload.get("id") if isinstance(payload, dict) else None
        key, where = (found if isinstance(found, str) else None), "the event's id"
    else:
        key, where = _header(headers, STANDARD_ID_HEADER), STANDARD_ID_HEADER
    if key is None or not valid_delivery_id(key):
        raise DeliveryError(f"{where} must be 1 to 255 printable characters")
    return key


def event_names(kind: Kind, headers: Mapping[str, str], payload: Any) -> tuple[str, ...]:
    """The names a trigger's ``events`` may list for this delivery, most general first; empty when
    the delivery names no event. The first is the one recorded."""
    if kind == "github":
        event = _header(headers, GITHUB_EVENT_HEADER)
        if not event:
            raise DeliveryError(f"{GITHUB_EVENT_HEADER} is required")
        action = payload.get("action") if isinstance(payload, dict) else None
        return (event, f"{event}.{action}") if isinstance(action, str) else (event,)
    found = payload.get("type") if isinstance(payload, dict) else None
    if isinstance(found, str) and found:
        return (found,)
    if kind == "stripe":
        raise DeliveryError("a Stripe event has a type")
    return ()


def is_ping(kind: Kind, names: tuple[str, ...]) -> bool:
    """GitHub's ``ping`` (sent when a hook is created): answered 200, starts nothing."""
    return kind == "github" and names[:1] == (GITHUB_PING,)


def wanted(events: list[str] | None, names: tuple[str, ...]) -> bool:
    """A trigger without ``events`` takes every event; one with takes only those it lists."""
    return events is None or any(name in events for name in names)


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
