"""Model prices as LiteLLM gives them, published by each worker at start (``model_prices``).

The API never imports LiteLLM, yet its run-start preflight must price a run exactly as the worker's
per-call reservation does (BOUNDED_OVERSPEND): the worker writes LiteLLM's price of every model it
serves here, the API reads it back, and both apply ``contracts.money.max_call_credits``.

A graph that names no model runs on the workers' default model (``RUNLEDGER_DEFAULT_MODEL`` of the
*worker*): its price is also published under :data:`WORKER_DEFAULT`, so the API prices such graphs
without knowing which model that is.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.catalog_models import ModelPrice as ModelPriceRow
from runledger.contracts.money import ModelPrice

#: The key of the workers' default model's price (no LiteLLM model is named so).
WORKER_DEFAULT = "(worker default model)"


async def publish(session: AsyncSession, prices: Mapping[str, ModelPrice], *, default_model: str) -> None:
    """Record (or update) each model's price, and the default model's under :data:`WORKER_DEFAULT`."""
    prices = {**prices, WORKER_DEFAULT: prices[default_model]}
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


async def price_of(session: AsyncSession, model: str | None) -> ModelPrice | None:
    """The published price of ``model``; ``None`` is the workers' default model."""
    key = WORKER_DEFAULT if model is None else model
    row = (
        await session.execute(select(ModelPriceRow).where(ModelPriceRow.model == key))
    ).scalar_one_or_none()
    if row is None:
        return None
    return ModelPrice(
        input_usd_per_token=row.input_usd_per_token, output_usd_per_token=row.output_usd_per_token
    )
