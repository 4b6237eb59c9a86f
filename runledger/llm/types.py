"""Model call request and response, independent of LiteLLM's classes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from runledger.contracts.money import ModelPrice, max_call_credits


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
    #: The provider's response id as reported by LiteLLM (kept on the receipt; never the charge key:
    #: providers may repeat ids, runledger's own ``usage_unit_id`` keys the charge).
    provider_response_id: str
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
        fields = dict(data)
        if "usage_unit_id" in fields:  # stored before revision 0011: it was the provider's id
            fields["provider_response_id"] = fields.pop("usage_unit_id")
        return cls(**{**fields, "cost_usd": Decimal(str(fields["cost_usd"]))})


@dataclass(frozen=True)
class CallBound:
    """What bounds one call's cost before it is made (``LiteLLMGateway.call_bound``)."""

    price: ModelPrice
    input_tokens: int
    max_output_tokens: int

    def max_credits(self, markup: Decimal) -> int:
        return max_call_credits(
            self.price,
            input_tokens=self.input_tokens,
            max_output_tokens=self.max_output_tokens,
            markup=markup,
        )
