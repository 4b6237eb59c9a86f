"""Model prices as LiteLLM gives them, published by each worker at start (``model_prices``).

The API never imports LiteLLM, yet its run-start preflight must price a run exactly as the worker's
per-call reservation does (BOUNDED_OVERSPEND): the worker writes LiteLLM's price of every model it
serves here, the API reads it back, and both apply ``contracts.money.max_call_credits``.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ModelPrice as ModelPriceRow
from runledger.contracts.money import ModelPrice


async def publish(session: AsyncSession, prices: Mapping[str, ModelPrice]) -> None:
    """Record (or update) each model's price."""
    if not prices:
        return
    statement = insert(ModelPriceRow).values(
        [
            {
                "model": model,
                "input_usd_per_token": price.input_usd_per_token,
                "output_usd_per_token": price.output_usd_per_token,
            }
            for model, price in sorted(prices.items())
        ]
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ModelPriceRow.model],
            set_={
                "input_usd_per_token": statement.excluded.input_usd_per_token,
                "output_usd_per_token": statement.excluded.output_usd_per_token,
                "published_at": func.now(),
            },
        )
    )


async def price_of(session: AsyncSession, model: str) -> ModelPrice | None:
    row = (
        await session.execute(select(ModelPriceRow).where(ModelPriceRow.model == model))
    ).scalar_one_or_none()
    if row is None:
        return None
    return ModelPrice(
        input_usd_per_token=row.input_usd_per_token, output_usd_per_token=row.output_usd_per_token
    )
