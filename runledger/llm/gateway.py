"""LiteLLM gateway: one model call, no retries of its own (Temporal owns retries), cost only from
LiteLLM. A model LiteLLM cannot price is refused *before* the call, so no call ever reaches a
provider without a price to bill it by. Requests are full OpenAI-format calls (tools, tool calls,
tool results); answers carry the model's tool calls.

How a call ends, for the meter (NO_SILENT_UNBILLED_CALLS):

- an answer: a :class:`ModelResponse` with the provider's usage (LiteLLM's count when a stream
  reports none) and LiteLLM's ``completion_cost`` of it; a stream is read by ``stream.py``;
- :class:`ModelGatewayError`: refused before the provider sent anything (connection refused, an
  HTTP error status): nothing was used, nothing is billed;
- :class:`ModelCallInterrupted`: the provider accepted the call and the stream broke (disconnect,
  timeout, a chunk or an answer that does not parse). ``partial`` is the usage of what arrived,
  counted by LiteLLM (``token_counter`` on the request and on what arrived) and priced by
  LiteLLM; ``None`` when that cannot be known (nothing arrived after the provider accepted the
  call, or LiteLLM could not count it), with ``reason`` saying why.

Every call carries a ``max_tokens`` (the graph's, else ``DEFAULT_MAX_OUTPUT_TOKENS``), so
:meth:`LiteLLMGateway.call_bound` is a real upper bound of what the call can cost.
"""

from __future__ import annotations

import functools
import os
from decimal import Decimal
from typing import Any

# LiteLLM fetches its cost map from the network at import unless told otherwise (feasibility §1).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

import litellm

from runledger.contracts.money import DEFAULT_MAX_OUTPUT_TOKENS, ModelPrice, usd
from runledger.llm.context import ChunkSink, DeltaSink
from runledger.llm.guard import install_guard, metered
from runledger.llm.offline import OFFLINE_MODEL, OFFLINE_MODEL_PRICE, offline_answer
from runledger.llm.stream import StreamedAnswer, StreamError, read_stream
from runledger.llm.types import CallBound, ModelDelta, ModelRequest, ModelResponse, ToolCall, ToolCallChunk

litellm.suppress_debug_info = True
litellm.register_model(OFFLINE_MODEL_PRICE)
# Every LiteLLM call in this process that did not come through :meth:`LiteLLMGateway.invoke` is
# reported (NO_UNMETERED_MODEL_CALLS).
install_guard()


class ModelGatewayError(Exception):
    """The provider call failed before anything arrived (network, provider error status, timeout
    before the answer began): nothing is billed. Retryable by Temporal."""


class ModelCallInterrupted(ModelGatewayError):
    """The provider began answering and the call broke: ``partial`` is what arrived, as usage and
    cost from LiteLLM, or ``None`` when it cannot be known (then ``reason`` says why)."""

    def __init__(self, reason: str, partial: ModelResponse | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial = partial


class UnpricedModelError(Exception):
    """LiteLLM has no price for the model: calling it would leave the call unbilled."""


@functools.lru_cache(maxsize=1024)
def model_price(model: str) -> ModelPrice:
    """LiteLLM's price of a model, USD per token (``UnpricedModelError`` when it has none).

    Cached per process (two registry lookups cost about a millisecond, and every run and every call
    asks); :class:`LiteLLMGateway` clears the cache when it registers prices. A model without a price
    is not cached: it raises."""
    try:
        prompt_cost, _ = litellm.cost_per_token(model=model, prompt_tokens=1, completion_tokens=0)
        _, completion_cost = litellm.cost_per_token(model=model, prompt_tokens=0, completion_tokens=1)
    except Exception as exc:
        raise UnpricedModelError(f"LiteLLM has no price for model {model!r}; register one") from exc
    price = ModelPrice(input_usd_per_token=usd(prompt_cost), output_usd_per_token=usd(completion_cost))
    if price.input_usd_per_token + price.output_usd_per_token <= 0:
        raise UnpricedModelError(f"model {model!r} has a zero price in LiteLLM's registry")
    return price


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class LiteLLMGateway:
    def __init__(
        self,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout_seconds: float = 60.0,
        model_registry: dict[str, Any] | None = None,
    ) -> None:
        self._api_base = api_base
        self._api_key = api_key
        self._timeout = timeout_seconds
        self._priced: set[str] = set()
        if model_registry:
            litellm.register_model(model_registry)
            model_price.cache_clear()

    def ensure_priced(self, model: str) -> None:
        if model in self._priced:
            return
        model_price(model)
        self._priced.add(model)

    def call_bound(self, request: ModelRequest) -> CallBound:
        """What bounds the call's cost: LiteLLM's price, its input tokens as LiteLLM counts them,
        and the output cap the gateway will send."""
        price = model_price(request.model)
        return CallBound(
            price=price, input_tokens=_input_tokens(request), max_output_tokens=_max_tokens(request)
        )

    async def invoke(
        self, request: ModelRequest, on_delta: DeltaSink | None = None, on_chunk: ChunkSink | None = None
    ) -> ModelResponse:
        """One call. Provider calls are streamed: text reaches ``on_delta`` (the run's text events)
        and every piece, tool-call pieces included, reaches ``on_chunk`` (a LangChain stream) as it
        is produced; the answer is priced by LiteLLM's ``completion_cost``, exactly as a
        non-streamed call. The offline model answers at once, so it is not streamed: its whole
        answer is one piece (LiteLLM's mock stream would cut it into 3-character chunks and cost
        more CPU than the run itself)."""
        self.ensure_priced(request.model)
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": request.as_messages(),
            "num_retries": 0,
            "timeout": self._timeout,
            "max_tokens": _max_tokens(request),
        }
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.tools:
            kwargs["tools"] = [dict(tool) for tool in request.tools]
            if request.tool_choice is not None:
                kwargs["tool_choice"] = request.tool_choice
        with metered():
            if request.model == OFFLINE_MODEL:
                return await self._offline(request, kwargs, on_delta, on_chunk)
            return await self._streamed(request, kwargs, on_delta, on_chunk)

    async def _offline(
        self,
        request: ModelRequest,
        kwargs: dict[str, Any],
        on_delta: DeltaSink | None,
        on_chunk: ChunkSink | None,
    ) -> ModelResponse:
        text, tool_calls = offline_answer(request)
        kwargs["mock_response"] = text
        if tool_calls:
            kwargs["mock_tool_calls"] = tool_calls
        try:
            answer = await litellm.acompletion(**kwargs)
        except Exception as exc:
            raise ModelGatewayError(_error(exc)) from exc
        result = _to_response(request, answer)
        if on_delta is not None and result.text:
            await on_delta(result.text)
        if on_chunk is not None:
            pieces = tuple(
                ToolCallChunk(index=i, id=call.id, name=call.name, arguments=call.arguments)
                for i, call in enumerate(result.tool_calls)
            )
            await on_chunk(ModelDelta(text=result.text, tool_calls=pieces))
        return result

    async def _streamed(
        self,
        request: ModelRequest,
        kwargs: dict[str, Any],
        on_delta: DeltaSink | None,
        on_chunk: ChunkSink | None,
    ) -> ModelResponse:
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        if self._api_base:
            kwargs["api_base"] = self._api_base
        if self._api_key:
            kwargs["api_key"] = self._api_key
        try:
            stream = await litellm.acompletion(**kwargs)
        except Exception as exc:
            # The provider refused (or could not be reached) before it sent anything.
            raise ModelGatewayError(_error(exc)) from exc
        answer = StreamedAnswer()
        try:
            async for delta in read_stream(stream, answer):
                if on_delta is not None and delta.text:
                    await on_delta(delta.text)
                if on_chunk is not None:
                    await on_chunk(delta)
            if not answer.chunks:
                raise StreamError("the provider's stream carried no answer")
            return _priced(request, answer)
        except Exception as exc:
            # The provider accepted the call: whatever it sent is billed by it, so it is billed here.
            raise _interrupted(request, answer, exc) from exc


def _priced(request: ModelRequest, answer: StreamedAnswer) -> ModelResponse:
    """A streamed answer priced by LiteLLM (``completion_cost`` of the answer as LiteLLM's own
    response): with the provider's usage when its stream reported one, else with LiteLLM's count
    of the request and of what arrived (as LiteLLM's stream wrapper counts a stream without usage)."""
    usage = answer.usage or _counted_usage(request, answer)
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
    calls = answer.tool_calls
    if calls:
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in calls
        ]
    model = answer.model or request.model
    response = litellm.ModelResponse(
        id=answer.provider_response_id,
        model=model,
        choices=[{"index": 0, "finish_reason": answer.finish_reason, "message": message}],
        usage=usage,
    )
    cost = litellm.completion_cost(completion_response=response, model=request.model)
    # The stream's own finish reason (None for a broken one; LiteLLM's response would say "stop").
    return _answer(
        request,
        response,
        {"custom_llm_provider": answer.provider},
        response.usage,
        cost,
        text=answer.text,
        tool_calls=calls,
        finish_reason=answer.finish_reason,
    )


def _counted_usage(request: ModelRequest, answer: StreamedAnswer) -> dict[str, int]:
    output = answer.text + "".join("".join(parts.arguments) for parts in answer.calls.values())
    tokens_in = _input_tokens(request)
    tokens_out = int(litellm.token_counter(model=request.model, text=output, count_response_tokens=True))
    return {
        "prompt_tokens": tokens_in,
        "completion_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
    }


def _input_tokens(request: ModelRequest) -> int:
    """The request's input tokens as LiteLLM counts them (messages and tool definitions)."""
    return int(
        litellm.token_counter(
            model=request.model,
            messages=request.as_messages(),
            tools=[dict(tool) for tool in request.tools] or None,  # type: ignore[misc]
        )
    )


def _max_tokens(request: ModelRequest) -> int:
    return DEFAULT_MAX_OUTPUT_TOKENS if request.max_tokens is None else request.max_tokens


def _interrupted(request: ModelRequest, answer: StreamedAnswer, exc: Exception) -> ModelCallInterrupted:
    """The usage of what a broken stream carried, through LiteLLM's own counting and pricing."""
    if not answer.chunks:
        return ModelCallInterrupted(
            f"the stream broke after the provider accepted the call, before any output: {_error(exc)}",
            None,
        )
    try:
        partial = _priced(request, answer)
    except Exception as counting:
        return ModelCallInterrupted(
            f"the stream broke mid-answer ({_error(exc)}) and LiteLLM could not count what arrived: "
            f"{_error(counting)}",
            None,
        )
    return ModelCallInterrupted(f"the stream broke mid-answer: {_error(exc)}", partial)


def _to_response(request: ModelRequest, response: Any) -> ModelResponse:
    hidden = getattr(response, "_hidden_params", {}) or {}
    cost = hidden.get("response_cost")
    if cost is None:
        cost = litellm.completion_cost(completion_response=response, model=request.model)
    choice = response.choices[0]
    text = choice.message.content or ""
    calls = tuple(
        ToolCall(id=str(call.id), name=str(call.function.name), arguments=call.function.arguments or "{}")
        for call in (getattr(choice.message, "tool_calls", None) or ())
    )
    return _answer(
        request,
        response,
        hidden,
        response.usage,
        cost,
        text=text,
        tool_calls=calls,
        finish_reason=getattr(choice, "finish_reason", None),
    )


def _answer(
    request: ModelRequest,
    head: Any,
    hidden: dict[str, Any],
    usage: Any,
    cost: Any,
    *,
    text: str,
    finish_reason: str | None,
    tool_calls: tuple[ToolCall, ...] = (),
) -> ModelResponse:
    """The answer from LiteLLM's parts: ``head`` (the response, or a stream's first chunk) gives
    the provider's id and model, ``hidden`` its provider, ``usage`` the tokens, ``cost`` LiteLLM's."""
    return ModelResponse(
        text=text,
        provider_response_id=str(head.id),
        model=str(head.model or request.model),
        provider=hidden.get("custom_llm_provider"),
        tokens_in=int(usage.prompt_tokens or 0),
        tokens_out=int(usage.completion_tokens or 0),
        cost_usd=cost if isinstance(cost, Decimal) else usd(cost),
        tool_calls=tool_calls,
        finish_reason=finish_reason,
    )
