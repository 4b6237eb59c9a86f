"""The OpenAI-compatible endpoint, driven by the real ``openai`` client over a real port: completions
and streamed completions from ``langgraph:chat`` are ordinary billed runs of the caller."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from api.routes import openai_compat
from tests.api.chat_helpers import (
    CONVERSATION,
    balance,
    cancel_the_held_run,
    held_model_calls,
    receipts_of,
    run_detail,
)
from tests.fakes.openai_server import FakeProvider
from tests.helpers import Tenant, create_user, wait_for_run

pytestmark = pytest.mark.usefixtures("worker")

MESSAGES = cast("list[ChatCompletionMessageParam]", CONVERSATION)


def client_for(api_url: str, user: Tenant) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{api_url}/v1", api_key=user.api_key, max_retries=0, timeout=60)


def fake_reply(prompt: str) -> str:
    """What the fake provider answers to a conversation whose last message is ``prompt``."""
    return f"A fake answer to: {prompt[:60]}"


async def test_completion_is_a_billed_run(api_url: str, api: httpx.AsyncClient, user: Tenant) -> None:
    before = await balance(api, user)
    async with client_for(api_url, user) as client:
        completion = await client.chat.completions.create(
            model="langgraph:chat",
            messages=MESSAGES,
            temperature=0.2,  # accepted, ignored
        )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "langgraph:chat"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == fake_reply("Where is it?")

    extension: dict[str, Any] = (completion.model_extra or {})["runledger"]
    run_id = extension["run_id"]
    assert completion.id == f"chatcmpl-{run_id}"
    run = await run_detail(api, user, run_id)
    assert run["graph_id"] == "langgraph:chat"
    assert run["status"] == "success"
    assert run["input"] == {"messages": CONVERSATION}
    assert run["output"] == {"reply": choice.message.content}
    assert extension["cost_credits"] == run["cost_credits"] > 0

    receipts = await receipts_of(api, user, run_id)
    assert len(receipts) == 1
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == receipts[0]["tokens_in"] > 0
    assert completion.usage.completion_tokens == receipts[0]["tokens_out"] > 0
    assert completion.usage.total_tokens == receipts[0]["tokens_in"] + receipts[0]["tokens_out"]
    assert receipts[0]["charged_credits"] == run["cost_credits"]
    after = await balance(api, user)
    assert before - after == run["cost_credits"]
    assert extension["balance_after"] == after


async def test_streamed_completion_is_a_billed_run(
    api_url: str, api: httpx.AsyncClient, user: Tenant, paced_provider: FakeProvider
) -> None:
    before = await balance(api, user)
    chunks = []
    async with client_for(api_url, user) as client:
        stream = await client.chat.completions.create(
            model="runledger/chat",  # an alias of langgraph:chat
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            chunks.append(chunk)
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    run_id = chunks[0].id.removeprefix("chatcmpl-")
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == fake_reply("Where is it?")
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1  # really streamed
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[0].choices[0].delta.role == "assistant"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert all(c.usage is None for c in chunks[:-1])

    run = await run_detail(api, user, run_id)
    assert run["status"] == "success"
    assert run["output"] == {"reply": content}
    receipts = await receipts_of(api, user, run_id)
    assert len(receipts) == 1
    assert usage_chunk.usage.prompt_tokens == receipts[0]["tokens_in"]
    assert usage_chunk.usage.completion_tokens == receipts[0]["tokens_out"]
    assert (usage_chunk.model_extra or {})["runledger"]["cost_credits"] == run["cost_credits"]
    assert before - await balance(api, user) == run["cost_credits"] > 0


async def test_idempotency_key_answers_the_same_run_billed_once(
    api_url: str, api: httpx.AsyncClient, user: Tenant
) -> None:
    async with client_for(api_url, user) as client:
        first, second = [
            await client.chat.completions.create(
                model="langgraph:chat",
                messages=MESSAGES,
                extra_headers={"Idempotency-Key": "chat-once"},
            )
            for _ in range(2)
        ]
        with pytest.raises(openai.UnprocessableEntityError) as reused:
            await client.chat.completions.create(
                model="langgraph:chat",
                messages=[{"role": "user", "content": "something else"}],
                extra_headers={"Idempotency-Key": "chat-once"},
            )
    assert first.id == second.id
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage == second.usage
    assert reused.value.code == "idempotency_key_reused"
    run_id = first.id.removeprefix("chatcmpl-")
    assert len(await receipts_of(api, user, run_id)) == 1


async def test_insufficient_credits_raises_the_openai_clients_error(
    api_url: str, api: httpx.AsyncClient
) -> None:
    broke = await create_user(api, credits=0, name="broke")
    async with client_for(api_url, broke) as client:
        with pytest.raises(openai.APIStatusError) as refused:
            await client.chat.completions.create(
                model="langgraph:chat",
                messages=MESSAGES,
            )
        with pytest.raises(openai.APIStatusError) as refused_stream:
            await client.chat.completions.create(
                model="langgraph:chat",
                messages=MESSAGES,
                stream=True,
            )
    for err in (refused.value, refused_stream.value):
        assert err.status_code == 402
        assert err.code == "insufficient_credits"
        assert err.type == "insufficient_quota"
        assert "credits" in err.message
    runs = (await api.get("/api/v1/runs", headers=broke.headers)).json()["runs"]
    assert runs == []  # a refused start leaves nothing


async def test_request_errors_are_openai_shaped(api_url: str, api: httpx.AsyncClient, user: Tenant) -> None:
    async with client_for(api_url, user) as client:
        with pytest.raises(openai.NotFoundError) as unknown:
            await client.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,
            )
        with pytest.raises(openai.UnprocessableEntityError) as not_chat:
            await client.chat.completions.create(
                model="langgraph:poet",
                messages=MESSAGES,
            )
        with pytest.raises(openai.UnprocessableEntityError) as tool_role:
            await client.chat.completions.create(
                model="langgraph:chat",
                messages=[{"role": "tool", "content": "42", "tool_call_id": "t1"}],
            )
    assert unknown.value.code == "graph_not_found"
    assert unknown.value.type == "invalid_request_error"
    assert "does not take a conversation" in not_chat.value.message
    assert tool_role.value.code == "validation_error"

    async with client_for(api_url, Tenant("u", "a", "not-a-key")) as client:
        with pytest.raises(openai.AuthenticationError) as unauthenticated:
            await client.models.list()
    assert unauthenticated.value.type == "authentication_error"

    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        for body in (
            {"model": "langgraph:chat"},
            {"model": "langgraph:chat", "messages": []},
            {"model": "langgraph:chat", "messages": [{"role": "user", "content": "hi"}] * 101},
            {"model": "langgraph:chat", "messages": [{"role": "user", "content": "hi"}], "n": 2},
            {"model": "langgraph:chat", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        ):
            resp = await http.post("/v1/chat/completions", json=body, headers=user.headers)
            assert resp.status_code == 422, body
            error = resp.json()["error"]
            assert error["code"] == "validation_error"
            assert error["type"] == "invalid_request_error"
            assert error["message"]
    runs = (await api.get("/api/v1/runs", headers=user.headers)).json()["runs"]
    assert runs == []


async def test_content_parts_and_developer_role_are_accepted(
    api_url: str, api: httpx.AsyncClient, user: Tenant
) -> None:
    async with client_for(api_url, user) as client:
        completion = await client.chat.completions.create(
            model="langgraph:chat",
            messages=[
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}],
                },
            ],
        )
    run = await run_detail(api, user, completion.id.removeprefix("chatcmpl-"))
    assert run["input"] == {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]
    }
    assert completion.choices[0].message.content == fake_reply("Hello there")


async def test_models_lists_the_chat_graph_and_its_aliases(api_url: str, user: Tenant) -> None:
    async with client_for(api_url, user) as client:
        models = [m.id async for m in client.models.list()]
    assert "langgraph:chat" in models
    assert "runledger/chat" in models
    assert "langgraph:poet" not in models


async def test_a_run_that_ends_in_error_is_an_upstream_error(
    api_url: str, api: httpx.AsyncClient, user: Tenant, fake_provider: FakeProvider
) -> None:
    async with held_model_calls(fake_provider), client_for(api_url, user) as client:
        pending = asyncio.create_task(
            client.chat.completions.create(
                model="langgraph:chat",
                messages=MESSAGES,
            )
        )
        run = await cancel_the_held_run(api, user, fake_provider)
        with pytest.raises(openai.InternalServerError) as failed:
            await pending
    assert failed.value.status_code == 502
    assert failed.value.code == run["error_code"]
    assert failed.value.code in ("run_cancelled", "graph_failed")
    assert failed.value.type == "server_error"
    assert failed.value.response.headers["x-runledger-run-id"] == run["run_id"]


async def test_a_streamed_run_that_ends_in_error_raises_in_the_stream(
    api_url: str, api: httpx.AsyncClient, user: Tenant, fake_provider: FakeProvider
) -> None:
    async with held_model_calls(fake_provider), client_for(api_url, user) as client:
        stream = await client.chat.completions.create(
            model="langgraph:chat",
            messages=MESSAGES,
            stream=True,
        )

        async def consume() -> list[Any]:
            return [chunk async for chunk in stream]

        pending = asyncio.create_task(consume())
        run = await cancel_the_held_run(api, user, fake_provider)
        with pytest.raises(openai.APIError) as failed:
            await pending
    assert failed.value.code == run["error_code"]
    assert failed.value.type == "server_error"


async def test_a_completion_that_waits_too_long_answers_504_and_the_run_goes_on(
    api_url: str,
    api: httpx.AsyncClient,
    user: Tenant,
    fake_provider: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(openai_compat, "WAIT_SECONDS", 0.5)
    async with held_model_calls(fake_provider) as gate, client_for(api_url, user) as client:
        with pytest.raises(openai.InternalServerError) as waited:
            await client.chat.completions.create(model="langgraph:chat", messages=MESSAGES)
        gate.set()
    assert waited.value.status_code == 504
    assert waited.value.code == "run_wait_timeout"
    run_id = waited.value.response.headers["x-runledger-run-id"]
    run = await wait_for_run(api, user, run_id)
    assert run["status"] == "success"
    assert len(await receipts_of(api, user, run_id)) == 1
