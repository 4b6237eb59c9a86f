"""Money rules: Decimal only, one ceil, markup >= 1."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runledger.contracts.money import charged_credits, credits_to_usd, usd, usd_to_credits

costs = st.decimals(min_value=0, max_value=1000, places=12, allow_nan=False, allow_infinity=False)
markups = st.decimals(min_value=1, max_value=10, places=4, allow_nan=False, allow_infinity=False)


def test_known_values() -> None:
    # 1.35e-05 USD x 2.0 = 2.7e-05 USD = 270 credits exactly; a float path would give 270.00000000000006
    assert charged_credits(usd(1.35e-05), Decimal("2.0")) == 270
    assert charged_credits(Decimal("0.00000001"), Decimal(1)) == 1  # 0.1 credit rounds up to 1
    assert charged_credits(Decimal(0), Decimal(2)) == 0


@given(cost=costs, markup=markups)
def test_single_ceil_bounds(cost: Decimal, markup: Decimal) -> None:
    credits = charged_credits(cost, markup)
    exact = cost * markup * 10**7
    assert isinstance(credits, int)
    assert exact <= credits < exact + 1


@given(a=costs, b=costs, markup=markups)
def test_monotonic_in_cost(a: Decimal, b: Decimal, markup: Decimal) -> None:
    low, high = sorted((a, b))
    assert charged_credits(low, markup) <= charged_credits(high, markup)


@given(cost=st.floats(min_value=0, max_value=1, allow_nan=False))
def test_no_float_on_the_money_path(cost: float) -> None:
    with pytest.raises(TypeError, match="Decimal"):
        charged_credits(cost, Decimal(2))  # type: ignore[arg-type]
    assert isinstance(charged_credits(usd(cost), Decimal(2)), int)


@given(cost=costs, low=markups, high=markups)
def test_monotonic_in_markup(cost: Decimal, low: Decimal, high: Decimal) -> None:
    low, high = sorted((low, high))
    assert charged_credits(cost, low) <= charged_credits(cost, high)


def test_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="markup"):
        charged_credits(Decimal(1), Decimal("0.5"))
    with pytest.raises(ValueError, match="negative"):
        charged_credits(Decimal(-1), Decimal(1))


def test_usd_credit_conversions_are_exact() -> None:
    assert credits_to_usd(10_000_000) == Decimal(1)
    assert usd_to_credits(Decimal("0.00000015")) == 1
    assert usd(0.1) == Decimal("0.1")
    assert usd(4.9999999999999996e-05) == Decimal("0.00005")  # LiteLLM's float sum of 10x1e-6 + 20x2e-6
    assert charged_credits(usd(2.7000000000000003e-05), Decimal(1)) == 270  # float noise never adds a credit


def test_max_call_credits_prices_input_and_the_whole_output_cap_with_one_ceil() -> None:
    from runledger.contracts.money import DEFAULT_MAX_OUTPUT_TOKENS, ModelPrice, max_call_credits

    price = ModelPrice(input_usd_per_token=Decimal("0.00001"), output_usd_per_token=Decimal("0.00003"))
    # (100 x 1e-5 + 1000 x 3e-5) USD x 2 = 0.062 USD = 620,000 credits
    assert max_call_credits(price, input_tokens=100, max_output_tokens=1000, markup=Decimal(2)) == 620_000
    assert max_call_credits(
        price, input_tokens=0, max_output_tokens=None, markup=Decimal(1)
    ) == charged_credits(Decimal("0.00003") * DEFAULT_MAX_OUTPUT_TOKENS, Decimal(1))
    tiny = ModelPrice(input_usd_per_token=Decimal("1E-12"), output_usd_per_token=Decimal(0))
    assert max_call_credits(tiny, input_tokens=1, max_output_tokens=0, markup=Decimal(1)) == 1  # one ceil
    with pytest.raises(ValueError, match="input_tokens"):
        max_call_credits(price, input_tokens=-1, max_output_tokens=1, markup=Decimal(1))


def test_the_run_estimate_is_max_model_calls_at_one_calls_maximum() -> None:
    from runledger.contracts.catalog import PROMPT_TOKENS_ALLOWANCE, GraphSpec, estimate_run_credits
    from runledger.contracts.money import ModelPrice, max_call_credits

    price = ModelPrice(input_usd_per_token=Decimal("0.000001"), output_usd_per_token=Decimal("0.000002"))
    spec = GraphSpec(graph_id="langgraph:x", description="", input_schema={}, max_model_calls=3)
    payload = {"topic": "x" * 288}  # 300 characters of JSON: 100 tokens
    one = max_call_credits(
        price, input_tokens=PROMPT_TOKENS_ALLOWANCE + 100, max_output_tokens=None, markup=Decimal(2)
    )
    assert estimate_run_credits(spec, payload, price, Decimal(2)) == 3 * one
