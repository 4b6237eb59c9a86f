"""Removing secrets from anything that leaves the process or outlives the request: telemetry (Langfuse
inputs, outputs, metadata), Temporal history (failure messages and stack traces), and the error
messages stored on run rows, model calls and run events. Values under secret-looking keys, strings
that look like credentials (API keys, bearer tokens, credentials in URLs), and the process's own
configured secrets wherever they appear. One scrubber for all of them (NO_SECRETS_IN_HISTORY)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"

#: A key is secret when its normalized name is one of these or ends with ``_<one of these>``
#: (``x-api-key``, ``db_password``, ``client_secret``), so ``max_tokens`` or ``tokens_in`` are not.
SECRET_KEY_NAMES = frozenset(
    {
        "api_key",
        "apikey",
        "auth",
        "authorization",
        "bearer",
        "client_secret",
        "cookie",
        "credential",
        "credentials",
        "passphrase",
        "passwd",
        "password",
        "private_key",
        "secret",
        "secret_key",
        "set_cookie",
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "session_token",
    }
)

#: Credential-shaped substrings, replaced wherever they occur in a string.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    # URLs with a password: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@"), rf"\1{REDACTED}@"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"), REDACTED),  # OpenAI-style and Langfuse secret keys
    (re.compile(r"\brl_[A-Za-z0-9_-]{16,}"), REDACTED),  # runledger API keys
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), REDACTED),  # JWTs
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), REDACTED),  # GitHub tokens
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), REDACTED),  # AWS access key ids
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), REDACTED),  # Slack tokens
)

_MAX_DEPTH = 32
_MIN_KNOWN_SECRET_LENGTH = 6


def is_secret_key(key: str) -> bool:
    name = re.sub(r"[\s.\-]+", "_", key.strip().lower())
    return name in SECRET_KEY_NAMES or any(name.endswith(f"_{n}") for n in SECRET_KEY_NAMES)


class Scrubber:
    """Callable that returns a scrubbed copy of a JSON-like value (the input is never modified).

    ``known`` are literal secrets of this process (the model API key, the admin token, ...):
    they are removed from every string, whatever they look like."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is removed whole.
        self._known = tuple(
            sorted({s for s in known if len(s) >= _MIN_KNOWN_SECRET_LENGTH}, key=len, reverse=True)
        )

    def __call__(self, value: Any) -> Any:
        return self._scrub(value, 0)

    def text(self, value: str) -> str:
        for secret in self._known:
            value = value.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value

    def _scrub(self, value: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                key: REDACTED
                if isinstance(key, str) and is_secret_key(key) and value[key] is not None
                else self._scrub(value[key], depth + 1)
                for key in value
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self._scrub(item, depth + 1) for item in value]
        if isinstance(value, bytes):
            return REDACTED  # opaque: never exported as is
        return value


#: A scrubber that knows no literal secrets: patterns and keys only.
scrub = Scrubber()
