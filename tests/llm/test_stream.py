"""Reading a streamed answer (``runledger.llm.stream``): the gateway's answer is LiteLLM's answer and
LiteLLM's price whichever way the stream is read, and a stream that breaks or reports an error is
billed for what arrived."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import litellm
import pytest

from runledger.contracts.money import DEFAULT_MAX_OUTPUT_TOKENS, usd
from runledger.llm import LiteLLMGateway, ModelCallInterrupted, ModelDelta, ModelRequest
from runledger.llm.guard import metered
from runledger.llm.stream import StreamedAnswer, read_stream
from tests.fakes.openai_server import FakeProvider

MODEL = "openai/gpt-4o-mini"
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a word up.",
        "parameters": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
    },
}


@pytest.fixture
def plain_text_provider(fake_provider: FakeProvider) -> Iterator[FakeProvider]:
    """A server that streams SSE under another ``Content-Type``: read through LiteLLM's wrapper."""
    fake_provider.log.stream_media_type = "text/plain"
    try:
        yield fake_provider
    finally:
        fake_provider.log.stream_media_type = "text/event-stream"


@pytest.fixture
def usageless_provider(fake_provider: FakeProvider) -> Iterator[FakeProvider]:
    fake_provider.log.stream_usage = False
    try:
        yield fake_provider
    finally:
        fake_provider.log.stream_usage = True


async def _litellm_rebuilt(provider: FakeProvider, request: ModelRequest) -> Any:
    """The answer LiteLLM's own stream wrapper assembles for the same request."""
    kwargs: dict[str, Any] = {}
    if request.tools:
        kwargs["tools"] = [dict(tool) for tool in request.tools]
    with metered():
        stream = await litellm.acompletion(
            model=request.model,
            messages=request.as_messages(),
            stream=True,
            stream_options={"include_usage": True},
            api_base=provider.url,
            api_key="sk-fake",
            num_retries=0,
            max_tokens=DEFAULT_MAX_OUTPUT_TOKENS,
            **kwargs,
        )
    chunks = [chunk async for chunk in stream]
    rebuilt = litellm.stream_chunk_builder(chunks, messages=request.as_messages())
    assert rebuilt is not None
    return rebuilt


async def test_a_text_answer_is_the_one_litellm_assembles_and_prices(fake_provider: FakeProvider) -> None:
    """Read off the HTTP response, the answer must be exactly LiteLLM's own assembled answer and
    ``completion_cost``."""
    request = ModelRequest(model=MODEL, messages=({"role": "user", "content": "one two three four"},))
    response = await LiteLLMGateway(api_base=fake_provider.url, api_key="sk-fake").invoke(request)
    rebuilt = await _litellm_rebuilt(fake_provider, request)
    assert response.text == rebuilt.choices[0].message.content
    assert (response.tokens_in, response.tokens_out) == (
        rebuilt.usage.prompt_tokens,
        rebuilt.usage.completion_tokens,
    )
    assert response.cost_usd == usd(litellm.completion_cost(completion_response=rebuilt))
    assert response.cost_usd > 0
    assert response.finish_reason == rebuilt.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("via", ["events", "litellm wrapper"])
async def test_a_tool_call_answer_is_the_one_litellm_assembles_and_prices(
    fake_provider: FakeProvider, via: str
) -> None:
    if via == "litellm wrapper":
        fake_provider.log.stream_media_type = "text/plain"
    try:
        request = ModelRequest(
            model=MODEL, messages=({"role": "user", "content": "look up sea"},), tools=(TOOL,)
        )
        pieces: list[ModelDelta] = []

        async def on_chunk(delta: ModelDelta) -> None:
            pieces.append(delta)

        response = await LiteLLMGateway(api_base=fake_provider.url, api_key="sk-fake").invoke(
            request, on_chunk=on_chunk
        )
        sent = fake_provider.log.completions[-1]["tool_call"]
        rebuilt = await _litellm_rebuilt(fake_provider, request)
    finally:
        fake_provider.log.stream_media_type = "text/event-stream"
    [call] = rebuilt.choices[0].message.tool_calls
    assert [(c.id, c.name, c.arguments) for c in response.tool_calls] == [
        (sent["id"], call.function.name, call.function.arguments)
    ]
    # The pieces streamed to LangChain add up to the same call.
    assert "".join(p.arguments for d in pieces for p in d.tool_calls) == call.function.arguments
    assert (response.tokens_in, response.tokens_out) == (
        rebuilt.usage.prompt_tokens,
        rebuilt.usage.completion_tokens,
    )
    assert response.cost_usd == usd(litellm.completion_cost(completion_response=rebuilt)) > 0
    assert response.finish_reason == "tool_calls"
    assert response.provider == "openai"


async def test_a_stream_under_another_content_type_is_read_by_litellm(
    plain_text_provider: FakeProvider,
) -> None:
    request = ModelRequest(model=MODEL, messages=({"role": "user", "content": "one two three"},))
    texts: list[str] = []

    async def on_delta(text: str) -> None:
        texts.append(text)

    response = await LiteLLMGateway(api_base=plain_text_provider.url, api_key="sk-fake").invoke(
        request, on_delta
    )
    rebuilt = await _litellm_rebuilt(plain_text_provider, request)
    assert response.text == "".join(texts) == rebuilt.choices[0].message.content
    assert len(texts) > 1
    assert response.tokens_out == rebuilt.usage.completion_tokens
    assert response.cost_usd == usd(litellm.completion_cost(completion_response=rebuilt))


async def test_another_openai_sdk_provider_keeps_litellm_s_handling(fake_provider: FakeProvider) -> None:
    """A provider LiteLLM also reaches through the OpenAI SDK but whose chunks it may rework (Groq)
    is read through LiteLLM's wrapper: the answer is the one LiteLLM assembles."""
    request = ModelRequest(model="groq/openai/gpt-oss-20b", messages=({"role": "user", "content": "a b"},))
    response = await LiteLLMGateway(api_base=fake_provider.url, api_key="sk-fake").invoke(request)
    rebuilt = await _litellm_rebuilt(fake_provider, request)
    assert response.provider == "groq"
    assert response.text == rebuilt.choices[0].message.content
    assert response.tokens_out == rebuilt.usage.completion_tokens
    assert response.cost_usd == usd(litellm.completion_cost(completion_response=rebuilt)) > 0


async def test_a_stream_without_usage_is_counted_by_litellm(usageless_provider: FakeProvider) -> None:
    request = ModelRequest(model=MODEL, messages=({"role": "user", "content": "four five six seven"},))
    response = await LiteLLMGateway(api_base=usageless_provider.url, api_key="sk-fake").invoke(request)
    assert response.tokens_in == litellm.token_counter(model=MODEL, messages=request.as_messages())
    assert response.tokens_out == litellm.token_counter(
        model=MODEL, text=response.text, count_response_tokens=True
    )
    prompt_cost, completion_cost = litellm.cost_per_token(
        model=MODEL, prompt_tokens=response.tokens_in, completion_tokens=response.tokens_out
    )
    assert response.cost_usd == usd(prompt_cost) + usd(completion_cost) > 0


@pytest.mark.parametrize("mode", ["error", "garbage", "disconnect"])
async def test_a_stream_that_breaks_is_billed_for_what_arrived(
    fake_provider: FakeProvider, mode: str
) -> None:
    fake_provider.log.breaks = [mode]
    request = ModelRequest(model=MODEL, messages=({"role": "user", "content": "eight nine"},))
    with pytest.raises(ModelCallInterrupted) as caught:
        await LiteLLMGateway(api_base=fake_provider.url, api_key="sk-fake").invoke(request)
    partial = caught.value.partial
    assert partial is not None
    words = fake_provider.log.broken[-1]["words_sent"]
    assert partial.text == " ".join(["A", "fake", "answer", "to"][:words])
    assert partial.provider_response_id == fake_provider.log.broken[-1]["id"]
    assert partial.tokens_out == litellm.token_counter(
        model=MODEL, text=partial.text, count_response_tokens=True
    )
    assert partial.cost_usd > 0
    if mode == "error":
        assert "overloaded" in caught.value.reason


async def test_a_stream_dropped_before_any_output_has_no_known_usage(fake_provider: FakeProvider) -> None:
    fake_provider.log.breaks = ["drop"]
    request = ModelRequest(model=MODEL, messages=({"role": "user", "content": "ten"},))
    with pytest.raises(ModelCallInterrupted) as caught:
        await LiteLLMGateway(api_base=fake_provider.url, api_key="sk-fake").invoke(request)
    assert caught.value.partial is None
    assert "before any output" in caught.value.reason


async def test_litellm_s_own_stream_objects_are_read_too() -> None:
    """A stream LiteLLM does not get from the OpenAI SDK (here its mock provider's) goes through its
    wrapper and gives the same pieces."""
    with metered():
        stream = await litellm.acompletion(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            mock_response="hello there, wide world",
            num_retries=0,
        )
    answer = StreamedAnswer()
    deltas = [delta.text async for delta in read_stream(stream, answer)]
    assert "".join(deltas) == answer.text == "hello there, wide world"
    assert len(deltas) > 1
    assert answer.finish_reason == "stop"
    assert answer.provider_response_id.startswith("chatcmpl-")
