"""Reading a provider's streamed answer: its deltas as they arrive, and the answer they add up to.

LiteLLM opens every streamed call and hands back its stream wrapper, which translates each
provider's chunks into OpenAI's format. That translation costs about 0.3 ms of CPU per chunk on a
2-core box, ten times the rest of a chunk's path (``bench.stream_cost``), and a real model streams
a chunk per token. When LiteLLM reached an OpenAI-format provider through the OpenAI SDK (OpenAI,
Azure OpenAI, and every OpenAI-compatible ``api_base`` of an ``openai/`` model: the wrapper's
``completion_stream`` is an ``openai.AsyncStream``), the chunks already are in OpenAI's format, so :func:`read_stream` takes the server-sent events off the
HTTP response LiteLLM opened (``httpx-sse``) and decodes their JSON itself. Every other provider is
read through LiteLLM's wrapper. Both give the same :class:`StreamedAnswer`; the gateway prices it
through LiteLLM either way (cost only from LiteLLM).

What the reader keeps of a chunk, in OpenAI's chat-completion-chunk format: the response id and
model (first seen), text and tool-call pieces (joined per tool-call index, as providers stream
them), the finish reason, and the usage a provider sends in its last chunk
(``stream_options.include_usage``). A provider that reports an error inside the stream, or sends a
chunk that does not parse, raises :class:`StreamError`; the connection breaking raises httpx's error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai
from httpx_sse import EventSource

from runledger.llm.types import ModelDelta, ToolCall, ToolCallChunk

_EVENT_STREAM = "text/event-stream"
#: LiteLLM providers whose streams LiteLLM passes through as they are (OpenAI's format, usage in the
#: last chunk). Others reached through the OpenAI SDK too (Groq, DeepSeek, ...) may need LiteLLM's
#: own handling of their chunks (usage in another field, reasoning text), so they keep its wrapper.
OPENAI_FORMAT_PROVIDERS = frozenset({"openai", "azure", "custom_openai"})
#: How long the rest of a body after ``[DONE]`` may take to arrive before the connection is dropped.
_DRAIN_SECONDS = 0.1


class StreamError(Exception):
    """The provider's stream carried an error or a chunk that is not an answer's."""


@dataclass
class _CallParts:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


@dataclass
class StreamedAnswer:
    """What a stream has carried so far (all of it once :func:`read_stream` is exhausted)."""

    provider: str | None = None
    provider_response_id: str = ""
    model: str | None = None
    finish_reason: str | None = None
    #: The provider's usage (OpenAI's ``usage`` object), when its stream reported one.
    usage: dict[str, Any] | None = None
    chunks: int = 0
    text_parts: list[str] = field(default_factory=list)
    calls: dict[int, _CallParts] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id=parts.id or "", name=parts.name or "", arguments="".join(parts.arguments) or "{}")
            for _, parts in sorted(self.calls.items())
        )

    def take(self, chunk: Any) -> ModelDelta | None:
        """Add one OpenAI-format chunk (a dict); its delta, or None when it carries no output."""
        if not isinstance(chunk, dict):
            raise StreamError(f"a stream chunk is not an object: {chunk!r:.200}")
        if chunk.get("error"):  # as the OpenAI SDK reads it (``"error": null`` is no error)
            raise StreamError(f"the provider reported an error mid-stream: {chunk['error']!r:.500}")
        self.chunks += 1
        if not self.provider_response_id and chunk.get("id"):
            self.provider_response_id = str(chunk["id"])
        if self.model is None and chunk.get("model"):
            self.model = str(chunk["model"])
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        choices = chunk.get("choices") or ()
        if not choices:
            return None
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta") or {}
        text = delta.get("content") or ""
        if text:
            self.text_parts.append(text)
        pieces = tuple(self._take_call(i, call) for i, call in enumerate(delta.get("tool_calls") or ()))
        return ModelDelta(text=text, tool_calls=pieces) if text or pieces else None

    def _take_call(self, position: int, call: dict[str, Any]) -> ToolCallChunk:
        function = call.get("function") or {}
        index = int(call.get("index", position) or 0)
        parts = self.calls.setdefault(index, _CallParts())
        parts.id = parts.id or call.get("id")
        parts.name = parts.name or function.get("name")
        arguments = function.get("arguments") or ""
        parts.arguments.append(arguments)
        return ToolCallChunk(index=index, id=call.get("id"), name=function.get("name"), arguments=arguments)


async def read_stream(wrapper: Any, answer: StreamedAnswer) -> AsyncIterator[ModelDelta]:
    """The deltas of LiteLLM's stream ``wrapper``, recorded into ``answer`` as they arrive."""
    answer.provider = getattr(wrapper, "custom_llm_provider", None)
    source = getattr(wrapper, "completion_stream", None)
    if (
        answer.provider in OPENAI_FORMAT_PROVIDERS
        and isinstance(source, openai.AsyncStream)
        and _EVENT_STREAM in source.response.headers.get("content-type", "")
    ):
        async for event_delta in _read_events(source.response, answer):
            yield event_delta
        return
    async for item in wrapper:
        chunk = item.model_dump(exclude_none=True)
        usage = getattr(item, "usage", None)
        if usage is not None and "usage" not in chunk:
            chunk["usage"] = usage.model_dump(exclude_none=True)
        piece = answer.take(chunk)
        if piece is not None:
            yield piece


async def _read_events(response: Any, answer: StreamedAnswer) -> AsyncIterator[ModelDelta]:
    """The deltas of an OpenAI-format event stream (``response``: the OpenAI SDK's HTTP response)."""
    events = EventSource(response).aiter_sse()
    try:
        async for event in events:
            if event.event == "error":
                raise StreamError(f"the provider reported an error mid-stream: {event.data!r:.500}")
            if event.data.startswith("[DONE]"):
                break
            if not event.data:
                continue
            try:
                chunk = json.loads(event.data)
            except ValueError as exc:
                raise StreamError(f"a stream chunk is not JSON: {event.data!r:.200}") from exc
            delta = answer.take(chunk)
            if delta is not None:
                yield delta
        else:
            return
        # The answer is complete. Read what is left of the body, briefly, so that an HTTP/1.1
        # connection goes back to the pool (as the OpenAI SDK does); a failure here changes nothing.
        try:
            async with asyncio.timeout(_DRAIN_SECONDS):
                async for _ in events:
                    pass
        except Exception:  # cleanup must not turn a whole answer into an error
            pass
    finally:
        await events.aclose()
        await response.aclose()
