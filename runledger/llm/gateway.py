"""LiteLLM gateway: one model call, no retries of its own (Temporal owns retries), cost only from
LiteLLM. A model LiteLLM cannot price is refused *before* the call, so no call ever reaches a
provider without a price to bill it by.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

# LiteLLM fetches its cost map from the network at import unless told otherwise (feasibility §1).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

import litellm

from runledger.contracts.money import usd
from runledger.llm.context import DeltaSink
from runledger.llm.offline import OFFLINE_MODEL, OFFLINE_MODEL_PRICE, offline_text
from runledger.llm.types import ModelRequest, ModelResponse

litellm.suppress_debug_info = True
litellm.register_model(OFFLINE_MODEL_PRICE)


class ModelGatewayError(Exception):
    """The provider call failed (network, provider error, timeout). Retryable by Temporal."""


class UnpricedModelError(Exception):
    """LiteLLM has no price for the model: calling it would leave the call unbilled."""


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

    def ensure_priced(self, model: str) -> None:
        if model in self._priced:
            return
        try:
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=model, prompt_tokens=1, completion_tokens=1
            )
        except Exception as exc:
            raise UnpricedModelError(f"LiteLLM has no price for model {model!r}; register one") from exc
        if prompt_cost + completion_cost <= 0:
            raise UnpricedModelError(f"model {model!r} has a zero price in LiteLLM's registry")
        self._priced.add(model)

    async def invoke(self, request: ModelRequest, on_delta: DeltaSink | None = None) -> ModelResponse:
        """One call. Provider calls are streamed, so text reaches ``on_delta`` as it is produced;
        usage and cost come from LiteLLM's rebuilt response, exactly as for a non-streamed call. The
        offline model answers at once, so it is not streamed: its whole text is one delta (LiteLLM's
        mock stream would cut it into 3-character chunks and cost more CPU than the run itself)."""
        self.ensure_priced(request.model)
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": request.as_messages(),
            "num_retries": 0,
            "timeout": self._timeout,
        }
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        if request.model == OFFLINE_MODEL:
            kwargs["mock_response"] = offline_text(request.messages[-1][1] if request.messages else "")
            try:
                answer = await litellm.acompletion(**kwargs)
            except Exception as exc:
                raise ModelGatewayError(f"{type(exc).__name__}: {exc}") from exc
            result = _to_response(request, answer)
            if on_delta is not None and result.text:
                await on_delta(result.text)
            return result
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        if self._api_base:
            kwargs["api_base"] = self._api_base
        if self._api_key:
            kwargs["api_key"] = self._api_key
        try:
            stream = await litellm.acompletion(**kwargs)
            chunks = []
            async for chunk in stream:
                chunks.append(chunk)
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta and on_delta is not None:
                    await on_delta(delta)
            response = litellm.stream_chunk_builder(chunks, messages=kwargs["messages"])
        except Exception as exc:
            raise ModelGatewayError(f"{type(exc).__name__}: {exc}") from exc
        if response is None:
            raise ModelGatewayError("the provider's stream carried no answer")
        return _to_response(request, response)


def _to_response(request: ModelRequest, response: Any) -> ModelResponse:
    hidden = getattr(response, "_hidden_params", {}) or {}
    cost = hidden.get("response_cost")
    if cost is None:
        cost = litellm.completion_cost(completion_response=response, model=request.model)
    usage = response.usage
    text = response.choices[0].message.content or ""
    return ModelResponse(
        text=text,
        usage_unit_id=str(response.id),
        model=str(response.model or request.model),
        provider=hidden.get("custom_llm_provider"),
        tokens_in=int(usage.prompt_tokens or 0),
        tokens_out=int(usage.completion_tokens or 0),
        cost_usd=usd(cost) if not isinstance(cost, Decimal) else cost,
    )
