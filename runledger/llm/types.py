"""Model call request and response, independent of LiteLLM's classes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class ModelRequest:
    model: str
    messages: tuple[tuple[str, str], ...]
    max_tokens: int | None = None

    def as_messages(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def fingerprint(self) -> str:
        body = json.dumps([self.model, self.messages, self.max_tokens], separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class ModelResponse:
    text: str
    #: The provider call's unique id as reported by LiteLLM: the charge's usage_unit_id.
    usage_unit_id: str
    model: str
    provider: str | None
    tokens_in: int
    tokens_out: int
    cost_usd: Decimal

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_usd"] = str(self.cost_usd)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelResponse:
        return cls(**{**data, "cost_usd": Decimal(str(data["cost_usd"]))})
