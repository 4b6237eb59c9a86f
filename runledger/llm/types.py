"""Model call request, response and stream pieces, independent of LiteLLM's and LangChain's classes.

A request is the whole OpenAI-format call (messages with tool calls and tool results, tools,
tool choice, sampling settings): its :meth:`ModelRequest.fingerprint` is the request hash that a
settled call is replayed under, so two requests that differ in anything the provider sees never
share a recorded answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from runledger.contracts.money import ModelPrice, max_call_credits


@dataclass(frozen=True)
class ModelRequest:
    model: str
    #: OpenAI chat messages: ``{"role", "content", "tool_calls"?, "tool_call_id"?, "name"?}``.
    messages: tuple[dict[str, Any], ...]
    max_tokens: int | None = None
    temperature: float | None = None
    #: OpenAI tool definitions (``{"type": "function", "function": {...}}``); empty: no tools.
    tools: tuple[dict[str, Any], ...] = ()
    #: ``"auto"``, ``"required"``, ``"none"`` or ``{"type": "function", "function": {"name": ...}}``.
    tool_choice: str | dict[str, Any] | None = None

    def as_messages(self) -> list[dict[str, Any]]:
        return [dict(message) for message in self.messages]

    def fingerprint(self) -> str:
        body = json.dumps(
            {
                "model": self.model,
                "messages": self.messages,
                "max_tokens": self.max_tokens,
                "temperature": self.temperature,
                "tools": self.tools,
                "tool_choice": self.tool_choice,
            },
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return content_text(message.get("content"))
        return ""


def content_text(content: Any) -> str:
    """The text of an OpenAI message content (a string, or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model made; ``arguments`` is the JSON text the model wrote."""

    id: str
    name: str
    arguments: str


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
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_usd"] = str(self.cost_usd)
        data["tool_calls"] = [asdict(call) for call in self.tool_calls]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelResponse:
        fields = dict(data)
        if "usage_unit_id" in fields:  # stored before revision 0011: it was the provider's id
            fields["provider_response_id"] = fields.pop("usage_unit_id")
        calls = tuple(ToolCall(**call) for call in fields.get("tool_calls") or ())
        return cls(**{**fields, "cost_usd": Decimal(str(fields["cost_usd"])), "tool_calls": calls})


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


@dataclass(frozen=True)
class ToolCallChunk:
    """A piece of a streamed tool call: the first piece of a call has its id and name."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class ModelDelta:
    """One streamed piece of an answer, as the provider sent it."""

    text: str = ""
    tool_calls: tuple[ToolCallChunk, ...] = field(default_factory=tuple)
