"""The LiteLLM gateway: cost from LiteLLM only, no retries of its own, unpriced models refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from runledger.config import OFFLINE_MODEL as CONFIG_OFFLINE_MODEL
from runledger.config import Settings
from runledger.llm import (
    LiteLLMGateway,
    ModelGatewayError,
    ModelNotBoundError,
    ModelRequest,
    UnpricedModelError,
)
from runledger.llm.offline import OFFLINE_MODEL
from runledger.sdk import ChatModel
from tests.fakes.openai_server import FakeProvider


def test_offline_model_is_the_default() -> None:
    assert CONFIG_OFFLINE_MODEL == OFFLINE_MODEL
    assert Settings(_env_file=None).default_model == OFFLINE_MODEL


async def test_offline_model_is_priced_through_litellm() -> None:
    response = await LiteLLMGateway().invoke(
        ModelRequest(model=OFFLINE_MODEL, messages=({"role": "user", "content": "hi"},))
    )
    # LiteLLM counts the streamed mock answer's tokens; the price is the one registered for the model.
    assert response.tokens_in > 0
    assert response.tokens_out > 0
    assert response.cost_usd == Decimal(response.tokens_in) * Decimal("0.000001") + Decimal(
        response.tokens_out
    ) * Decimal("0.000002")
    assert response.provider_response_id.startswith("chatcmpl-")


async def test_fake_provider_call_is_priced_by_litellm_cost_map(fake_provider: FakeProvider) -> None:
    gateway = LiteLLMGateway(api_base=fake_provider.url, api_key="sk-fake")
    response = await gateway.invoke(
        ModelRequest(
            model="openai/gpt-4o-mini", messages=({"role": "user", "content": "three little words"},)
        )
    )
    assert response.provider_response_id in fake_provider.log.ids()
    expected = Decimal(response.tokens_in) * Decimal("0.00000015") + Decimal(response.tokens_out) * Decimal(
        "0.0000006"
    )
    assert response.cost_usd == expected


async def test_no_retries_inside_litellm(fake_provider: FakeProvider) -> None:
    gateway = LiteLLMGateway(api_base=fake_provider.url, api_key="sk-fake")
    fake_provider.log.fail_next = 3
    try:
        with pytest.raises(ModelGatewayError):
            await gateway.invoke(
                ModelRequest(model="openai/gpt-4o-mini", messages=({"role": "user", "content": "x"},))
            )
        assert fake_provider.log.fail_next == 2  # exactly one request reached the provider
    finally:
        fake_provider.log.fail_next = 0


async def test_unpriced_model_is_refused_before_any_call(fake_provider: FakeProvider) -> None:
    gateway = LiteLLMGateway(api_base=fake_provider.url, api_key="sk-fake")
    before = fake_provider.log.count()
    with pytest.raises(UnpricedModelError):
        await gateway.invoke(
            ModelRequest(model="openai/my-unpriced-model", messages=({"role": "user", "content": "x"},))
        )
    assert fake_provider.log.count() == before


async def test_registered_price_makes_a_model_usable(fake_provider: FakeProvider) -> None:
    gateway = LiteLLMGateway(
        api_base=fake_provider.url,
        api_key="sk-fake",
        model_registry={
            "openai/house-model": {
                "input_cost_per_token": 1e-6,
                "output_cost_per_token": 2e-6,
                "litellm_provider": "openai",
                "mode": "chat",
            }
        },
    )
    response = await gateway.invoke(
        ModelRequest(model="openai/house-model", messages=({"role": "user", "content": "x y"},))
    )
    assert response.cost_usd == Decimal(response.tokens_in) * Decimal("0.000001") + Decimal(
        response.tokens_out
    ) * Decimal("0.000002")


async def test_text_streams_to_the_delta_sink(fake_provider: FakeProvider) -> None:
    gateway = LiteLLMGateway(api_base=fake_provider.url, api_key="sk-fake")
    pieces: list[str] = []

    async def sink(delta: str) -> None:
        pieces.append(delta)

    response = await gateway.invoke(
        ModelRequest(model="openai/gpt-4o-mini", messages=({"role": "user", "content": "a b c"},)), sink
    )
    assert len(pieces) > 1
    assert "".join(pieces) == response.text


async def test_chat_model_refuses_to_call_outside_a_run(fake_provider: FakeProvider) -> None:
    """NO_UNMETERED_MODEL_CALLS: with no run bound there is no meter, so no call is made at all."""
    before = fake_provider.log.count()
    with pytest.raises(ModelNotBoundError, match="outside a runledger run"):
        await ChatModel(model="openai/gpt-4o-mini").ainvoke("hi")
    with pytest.raises(ModelNotBoundError):
        ChatModel().invoke("hi")
    assert ModelNotBoundError.code == "model_not_bound"
    assert fake_provider.log.count() == before
