"""``ChatModel``: the LangChain chat model of graph code, metered on every call.

Contract:
- A ``langchain_core`` ``BaseChatModel``: ``ainvoke``/``invoke``, ``astream`` (and so LangGraph's
  ``messages`` stream mode), ``bind_tools`` with tool calls (streamed tool-call chunks too),
  ``with_structured_output`` (function calling), ``usage_metadata``, ``max_tokens``/``temperature``,
  and ``model`` = any LiteLLM model string (unset: the graph's ``model`` setting, else
  ``RUNLEDGER_DEFAULT_MODEL``).
- Every call is one :func:`runledger.llm.call`: the run's meter records it before the provider is
  asked and charges it once; the text streams into the run's ``text_delta`` events on the way.
  Outside a run it raises :class:`~runledger.llm.ModelNotBoundError` (there is no unmetered path).
- LangChain messages become full OpenAI-format messages (``convert_to_openai_messages``: tool calls
  on assistant messages, tool results as ``tool`` messages); tools become OpenAI tool definitions
  (``convert_to_openai_tool``).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    convert_to_openai_messages,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from runledger import llm
from runledger.llm import ModelDelta, ModelRequest, ModelResponse


def _tool_choice(choice: Any, tools: list[dict[str, Any]]) -> str | dict[str, Any] | None:
    """LangChain's tool_choice spellings as OpenAI's: ``"any"``/``True`` → a call is required, a
    tool's name → that tool."""
    if choice is None or choice is False:
        return None
    if choice is True:
        choice = tools[0]["function"]["name"] if len(tools) == 1 else "required"
    if choice == "any":
        return "required"
    if isinstance(choice, str) and choice not in ("auto", "none", "required"):
        return {"type": "function", "function": {"name": choice}}
    if isinstance(choice, str | dict):
        return choice
    raise ValueError(f"unsupported tool_choice {choice!r}")


def _usage(response: ModelResponse) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=response.tokens_in,
        output_tokens=response.tokens_out,
        total_tokens=response.tokens_in + response.tokens_out,
    )


def _metadata(response: ModelResponse) -> dict[str, Any]:
    return {
        "model_name": response.model,
        "finish_reason": response.finish_reason,
        "provider_response_id": response.provider_response_id,
        "cost_usd": str(response.cost_usd),
    }


def _ai_message(response: ModelResponse) -> AIMessage:
    calls, invalid = [], []
    for call in response.tool_calls:
        try:
            args = json.loads(call.arguments or "{}")
        except json.JSONDecodeError as exc:
            invalid.append(invalid_tool_call(name=call.name, args=call.arguments, id=call.id, error=str(exc)))
            continue
        if isinstance(args, dict):
            calls.append(tool_call(name=call.name, args=args, id=call.id))
        else:
            invalid.append(
                invalid_tool_call(name=call.name, args=call.arguments, id=call.id, error="not an object")
            )
    return AIMessage(
        content=response.text,
        tool_calls=calls,
        invalid_tool_calls=invalid,
        usage_metadata=_usage(response),
        response_metadata=_metadata(response),
    )


def _chunk(delta: ModelDelta) -> ChatGenerationChunk:
    pieces = [
        tool_call_chunk(name=p.name, args=p.arguments, id=p.id, index=p.index) for p in delta.tool_calls
    ]
    return ChatGenerationChunk(message=AIMessageChunk(content=delta.text, tool_call_chunks=pieces))


def _whole(response: ModelResponse) -> ChatGenerationChunk:
    """A replayed call (answered from its record) streams as one piece."""
    pieces = [
        tool_call_chunk(name=c.name, args=c.arguments, id=c.id, index=i)
        for i, c in enumerate(response.tool_calls)
    ]
    return ChatGenerationChunk(message=AIMessageChunk(content=response.text, tool_call_chunks=pieces))


class ChatModel(BaseChatModel):
    """A LangChain chat model whose every call is metered by runledger (see the module contract)."""

    #: Any LiteLLM model string; None: the graph's ``model`` setting, else ``RUNLEDGER_DEFAULT_MODEL``.
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None

    @property
    def _llm_type(self) -> str:
        return "runledger"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "max_tokens": self.max_tokens, "temperature": self.temperature}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        return super().bind(tools=formatted, tool_choice=_tool_choice(tool_choice, formatted), **kwargs)

    def _request(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> ModelRequest:
        model = kwargs.get("model") or self.model or llm.default_model()
        return ModelRequest(
            model=model,
            messages=tuple(convert_to_openai_messages(messages)),
            max_tokens=kwargs.get("max_tokens", self.max_tokens),
            temperature=kwargs.get("temperature", self.temperature),
            tools=tuple(kwargs.get("tools") or ()),
            tool_choice=kwargs.get("tool_choice") if kwargs.get("tools") else None,
        )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        response = await llm.call(self._request(messages, kwargs))
        return ChatResult(generations=[ChatGeneration(message=_ai_message(response))])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """A sync call (a sync node): the call runs on the run's event loop, this thread waits."""
        loop = llm.run_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError("ChatModel.invoke blocks: in async graph code use `await model.ainvoke(...)`")
        request = self._request(messages, kwargs)
        done: Future[ModelResponse] = Future()
        context = contextvars.copy_context()  # the run's binding and LangGraph node travel along

        def start() -> None:
            task = loop.create_task(llm.call(request), context=context)
            task.add_done_callback(
                lambda t: (
                    done.set_exception(t.exception() or RuntimeError("cancelled"))
                    if t.cancelled() or t.exception()
                    else done.set_result(t.result())
                )
            )

        loop.call_soon_threadsafe(start)
        return ChatResult(generations=[ChatGeneration(message=_ai_message(done.result()))])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request = self._request(messages, kwargs)
        pieces: asyncio.Queue[ModelDelta] = asyncio.Queue()

        async def on_chunk(delta: ModelDelta) -> None:
            pieces.put_nowait(delta)

        task = asyncio.ensure_future(llm.call(request, on_chunk))
        streamed = False
        try:
            while not task.done() or not pieces.empty():
                if pieces.empty():
                    getter = asyncio.ensure_future(pieces.get())
                    await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        continue
                    delta = getter.result()
                else:
                    delta = pieces.get_nowait()
                streamed = True
                yield _chunk(delta)
            response = await task
        finally:
            if not task.done():
                task.cancel()
        if not streamed:
            yield _whole(response)
        final = AIMessageChunk(
            content="",
            usage_metadata=_usage(response),
            response_metadata=_metadata(response),
            chunk_position="last",
        )
        yield ChatGenerationChunk(message=final)
