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
    #: The provider call's unique id as reported by LiteLLM: the charge's usage_unit_id.
    usage_unit_id: str
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
        calls = tuple(ToolCall(**call) for call in data.get("tool_calls") or ())
        return cls(**{**data, "cost_usd": Decimal(str(data["cost_usd"])), "tool_calls": calls})


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
