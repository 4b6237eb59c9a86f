"""Money rules (SPEC §3): integer credits, Decimal arithmetic, a single ceil.

1 credit = 1e-7 USD. Nothing on the money path is a float: a float cost from LiteLLM enters through
:func:`usd`, which keeps the 15 significant digits a double can carry. LiteLLM sums token prices in
floats, so 10 x 1e-6 + 20 x 2e-6 arrives as 4.9999999999999996e-05; taken literally, float noise would
move the single ceil by a whole credit either way. 15 digits is far below one credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

CREDITS_PER_USD = Decimal(10) ** 7


def usd(value: float | int | str | Decimal) -> Decimal:
    """Turn a provider-reported cost into an exact Decimal."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(format(value, ".15g")).normalize()
    return Decimal(value)


def charged_credits(cost_usd: Decimal, markup: Decimal) -> int:
    """Credits charged for a provider cost: ``ceil(cost_usd x markup x 10^7)``, one ceil."""
    if not isinstance(cost_usd, Decimal) or not isinstance(markup, Decimal):
        raise TypeError("money is Decimal: convert provider floats with usd() first")
    if cost_usd < 0:
        raise ValueError("cost_usd must not be negative")
    if markup < 1:
        raise ValueError("markup must be at least 1")
    return int((cost_usd * markup * CREDITS_PER_USD).to_integral_value(rounding=ROUND_CEILING))


def credits_to_usd(credits: int) -> Decimal:
    """Exact USD value of a credit amount."""
    return Decimal(credits) / CREDITS_PER_USD


def usd_to_credits(amount_usd: Decimal) -> int:
    """Credits bought by a USD amount, rounded down (never give away a fraction)."""
    return int((amount_usd * CREDITS_PER_USD).to_integral_value(rounding="ROUND_FLOOR"))


#: The output cap of a model call whose graph gives no ``max_tokens``: the gateway sends it to the
#: provider, so it bounds what the call can cost (BOUNDED_OVERSPEND).
DEFAULT_MAX_OUTPUT_TOKENS = 4096


@dataclass(frozen=True)
class ModelPrice:
    """LiteLLM's price of one model, USD per token (what the worker publishes in ``model_prices``)."""

    input_usd_per_token: Decimal
    output_usd_per_token: Decimal


def max_call_credits(
    price: ModelPrice, *, input_tokens: int, max_output_tokens: int | None, markup: Decimal
) -> int:
    """The most one call can be charged: the price of its input tokens plus its whole output cap
    (the documented default cap when it names none), with the markup and the single ceil of
    :func:`charged_credits`. The one pricing rule of the per-call reservation and of the run-start
    preflight."""
    if input_tokens < 0:
        raise ValueError("input_tokens must not be negative")
    output = DEFAULT_MAX_OUTPUT_TOKENS if max_output_tokens is None else max_output_tokens
    cost = price.input_usd_per_token * input_tokens + price.output_usd_per_token * output
    return charged_credits(cost, markup)
