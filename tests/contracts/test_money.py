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
