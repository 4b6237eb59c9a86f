"""The preflight of a run at its trigger, priced one way everywhere: the API's run start, a webhook
delivery (``api.webhook_receiver``) and a schedule slot (``activities.schedules``) all estimate a
run with :func:`run_estimate` — ``contracts.catalog.estimate_run_credits`` at the LiteLLM price a
worker published (``db.prices``; a graph that names no model at the workers' default model's) — and
refuse with the same codes and messages.

No published price raises :class:`ModelNotPriced` (the API answers 503 ``model_not_priced``; a slot
is retried by Temporal: a worker publishes its prices when it starts).

:func:`trigger_refusal` is the first check of a run that no user session starts (a slot or a
delivery; GRANT_VALIDATED_TWICE, the second being the worker's authorize): the grant must allow the
graph now and have room for one call at its bound (``contracts.catalog.per_call_credits``, as
authorize asks), and the paying account's available credits must cover the whole estimate — what an
API start needs for its hold (402 there; here the run is recorded ``skipped`` with
``insufficient_credits``, since a sender cannot be asked to pay). Nothing is held here: the hold is
taken at authorize, which checks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db import grants, prices, reservations
from db.trigger_models import ExecutionGrant
from runledger.contracts.catalog import GraphSpec, estimate_run_credits, per_call_credits
from runledger.contracts.errors import ErrorCode
from runledger.contracts.grants import check_grant


class ModelNotPriced(Exception):
    """No worker has published the price of the graph's model yet."""

    def __init__(self, model: str | None) -> None:
        self.model = model or "the workers' default model"
        super().__init__(f"no worker has published a price for {self.model} yet")


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str


def shortfall_message(available: int, needed: int) -> str:
    return f"{available} credits are available; this run's estimate is {needed} credits"


async def run_estimate(
    session: AsyncSession, spec: GraphSpec, payload: dict[str, Any], markup: Decimal
) -> int:
    """The credits a run of ``spec`` with ``payload`` must be able to hold before it starts."""
    price = await prices.price_of(session, spec.model)
    if price is None:
        raise ModelNotPriced(spec.model)
    return estimate_run_credits(spec, payload, price, markup)


async def trigger_refusal(
    session: AsyncSession,
    *,
    grant: ExecutionGrant | None,
    graph_id: str,
    spec: GraphSpec | None,
    payload: dict[str, Any],
    markup: Decimal,
    now: datetime,
) -> Refusal | None:
    """Why a slot or delivery may not start its run (None: it may). ``spec`` None (the graph is no
    longer published) checks the grant only; the run then ends ``graph_not_found`` at authorize."""
    view = None if grant is None else grants.view(grant)
    denied = check_grant(view, graph_id=graph_id, now=now)
    if denied is not None:
        return Refusal(denied.code, denied.message)
    if spec is None or grant is None:
        return None
    needed = await run_estimate(session, spec, payload, markup)
    denied = check_grant(view, graph_id=graph_id, now=now, next_cost_credits=per_call_credits(spec, needed))
    if denied is not None:
        return Refusal(denied.code, denied.message)
    available = await reservations.available(session, billing_account_id=grant.billing_account_id)
    if available < needed:
        return Refusal(ErrorCode.INSUFFICIENT_CREDITS, shortfall_message(available, needed))
    return None
