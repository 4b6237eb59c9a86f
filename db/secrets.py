"""Secrets encrypted at rest (SECRETS_ENCRYPTED_AT_REST): webhook signing secrets (and connection
credentials) are stored only as Fernet tokens.

Keys come from ``RUNLEDGER_SECRET_KEYS``: comma-separated Fernet keys (url-safe base64 of 32 bytes,
``SecretBox.new_key()``), newest first. The newest encrypts; every key decrypts (``MultiFernet``), so
a new key is rolled out by prepending it, then ``runledger rotate-secrets`` re-encrypts every row
under it, after which the old key can be dropped. The dev stack generates one key into its data dir.

The box is handed in by a composition root (API lifespan, worker, CLI); the plain text exists only
in the process memory of whoever verifies or uses it, never in a row, a log, an event or a
workflow/activity input.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["InvalidToken", "SecretBox", "SecretKeysError"]


class SecretKeysError(ValueError):
    """``RUNLEDGER_SECRET_KEYS`` is missing or holds a value that is not a Fernet key."""


class SecretBox:
    """Encrypt/decrypt short secrets with the configured keys (newest first)."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SecretKeysError("RUNLEDGER_SECRET_KEYS holds no key")
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode()))
            except (ValueError, TypeError):
                raise SecretKeysError(
                    f"RUNLEDGER_SECRET_KEYS: key #{position} is not a Fernet key "
                    "(url-safe base64 of 32 bytes; `runledger rotate-secrets --new-key` prints one)"
                ) from None
        self._multi = MultiFernet(fernets)

    @classmethod
    def from_setting(cls, value: str | None) -> SecretBox:
        if value is None or not value.strip():
            raise SecretKeysError(
                "RUNLEDGER_SECRET_KEYS is not set (`runledger up` generates one into its data dir)"
            )
        return cls([part for part in value.split(",") if part.strip()])

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, plaintext: str) -> str:
        return self._multi.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        """Raises ``InvalidToken`` when no configured key opens it."""
        return self._multi.decrypt(token.encode()).decode()

    def rotate(self, token: str) -> str:
        """The same secret, encrypted under the newest key."""
        return self._multi.rotate(token.encode()).decode()
