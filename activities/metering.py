"""The billing meter bound around a graph run: every model call is reserved and recorded before it
is made and charged exactly once after (IDEMPOTENT_CHARGES, NO_SILENT_UNBILLED_CALLS,
BOUNDED_OVERSPEND).

Before a call, in one statement under the account's lock (``db.reservations.reserve_call``; the
grant's revocation, expiry and scope are checked just before it): the run must still be running, its
grant must allow the call (the grant's calls in flight included), and the balance less the other
runs' holds must cover the call's maximum cost (LiteLLM's price x (input tokens + ``max_tokens``),
``LiteLLMGateway.call_bound``) plus the run's calls already in flight; the run's hold grows to cover
it and the call is recorded ``pending`` with runledger's ``usage_unit_id``. After it:

- an answer is charged (``settled``); a call already settled by an earlier attempt is answered from
  its stored response instead (a retried execution replays its paid calls) — only for the same
  request (its stored request hash): a different request under the same call key is a new call
  (key ``{call_key}@{hash}``), never a wrong replay;
- a broken stream is charged for what arrived (``partial``) or, when that is unknown, left
  ``unsettled`` with the reason; a refusal before anything arrived is ``failed`` and unbilled;
- the charge write is retried in place under the same key; if it keeps failing the call is left
  ``unsettled`` with the charge it owes, which the run's next attempt (:meth:`LedgerMeter.settle_owed`,
  before its graph runs) or reconciliation (:func:`write_owed_charge`) writes under the same key.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import structlog

from activities.events import TextStream
from activities.metrics import counting_charge_failures
from db import grants, ledger, model_calls, reservations
from db.session import Database
from runledger.contracts import ids
from runledger.contracts.grants import GrantErrorCode, budget_exhausted, check_grant
from runledger.contracts.money import charged_credits
from runledger.llm import CallBound, ModelCallInterrupted, ModelGatewayError, ModelRequest, ModelResponse
from runledger.llm.context import Invoke
from runledger.telemetry import RunRef, RunTracer

SOURCE_SYSTEM = "litellm"
#: A charge write is tried this many times in place (same key) before its call is left unsettled.
CHARGE_WRITE_ATTEMPTS = 4
CHARGE_RETRY_DELAYS = (0.2, 0.5, 1.0)

log = structlog.get_logger(__name__)


class RunNotRunningError(Exception):
    """The run left ``running`` (e.g. it was cancelled) while its graph was executing."""


class CreditsExhaustedError(Exception):
    """Neither the run's hold nor the account's free balance covers the next model call."""

    def __init__(self, needed: int, spendable: int) -> None:
        super().__init__(f"the next model call needs up to {needed} credits; {spendable} are available")
        self.needed = needed
        self.spendable = spendable


class GrantDeniedError(Exception):
    """The run's execution grant no longer allows the next model call (GRANT_VALIDATED_TWICE)."""

    def __init__(self, code: GrantErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class ChargeNotWrittenError(Exception):
    """A provider call's charge could not be written, even retried in place: the call is left
    ``unsettled`` with the charge it owes. Transient: the run's next attempt writes it first."""


async def write_charge(
    database: Database, charge: ledger.Charge, call: ledger.CallSettlement
) -> ledger.ChargeOutcome:
    """Charge a provider call exactly once and settle the call with it (the meter's write, and what
    ``bench/ledger_bench.py`` measures)."""
    # One statement, its own transaction: the hot account row is locked for the server's work only.
    outcome = await database.single_statement(functools.partial(ledger.charge_once, charge=charge, call=call))
    if outcome is None:
        # The reference has a receipt that needs resolving (another amount, or a concurrent first
        # delivery): settle against it in a transaction.
        async with database.transaction() as session:
            outcome = await ledger.record_charge(session, charge=charge, call=call)
    return outcome


def owed(charge: ledger.Charge, call: ledger.CallSettlement) -> dict[str, Any]:
    """What an unsettled call keeps in ``model_calls.charge``: everything its charge write needs."""
    return {"charge": charge.to_json(), "settlement": call.to_json()}


async def write_owed_charge(database: Database, recorded: dict[str, Any]) -> ledger.ChargeOutcome:
    """Write the charge an unsettled call owes (see :func:`owed`), under its original key."""
    return await write_charge(
        database,
        ledger.Charge.from_json(recorded["charge"]),
        ledger.CallSettlement.from_json(recorded["settlement"]),
    )


class LedgerMeter:
    def __init__(
        self,
        *,
        database: Database,
        run_id: str,
        graph_id: str,
        billing_account_id: str,
        attempt: int,
        markup: Decimal,
        bound: Callable[[ModelRequest], CallBound],
        grant_id: str | None = None,
        tracer: RunTracer | None = None,
    ) -> None:
        self._db = database
        self._tracer = tracer or RunTracer()
        self._run = RunRef(run_id=run_id, graph_id=graph_id, billing_account_id=billing_account_id)
        self._run_id = run_id
        self._graph_id = graph_id
        self._account = billing_account_id
        self._attempt = attempt
        self._markup = markup
        self._bound = bound
        self._grant_id = grant_id
        self.calls = 0
        self.replayed = 0

    async def settle_owed(self) -> int:
        """Before the graph runs again: earlier attempts' calls still pending are left unsettled
        (their attempt ended mid-call), and every charge an earlier attempt owes is written, so a
        call it settles is replayed rather than paid again. Returns the charges written. The first
        attempt of a run has no earlier one, so it has nothing to settle (and skips the round trip)."""
        if self._attempt <= 1:
            return 0
        async with self._db.transaction() as session:
            await model_calls.unsettle_lost_attempts(session, run_id=self._run_id, attempt=self._attempt)
            calls = await model_calls.owed_charges(session, run_id=self._run_id)
        for call in calls:
            if call.charge is not None:
                await write_owed_charge(self._db, call.charge)
        return len(calls)

    async def _open(
        self, call_key: str, request: ModelRequest
    ) -> tuple[str, str | None, ModelResponse | None]:
        """Replay a settled call, or reserve and record a new one: ``(call_key, call_id, None)``."""
        request_hash = request.fingerprint()
        if self._attempt > 1:
            # Only an earlier attempt can have settled a call of this key (keys are unique within an
            # attempt), so the first attempt of a run has nothing to replay.
            call_key, replayed = await self._replay(call_key, request_hash)
            if replayed is not None:
                return call_key, None, replayed
        max_credits = self._bound(request).max_credits(self._markup)
        grant_max = await self._check_grant(max_credits) if self._grant_id is not None else None
        reserved = await self._db.single_statement(
            functools.partial(
                reservations.reserve_call,
                billing_account_id=self._account,
                run_id=self._run_id,
                grant_id=self._grant_id,
                attempt=self._attempt,
                call_key=call_key,
                model=request.model,
                request_hash=request_hash,
                usage_unit_id=ids.usage_unit_id(run_id=self._run_id, call_key=call_key),
                max_credits=max_credits,
            )
        )
        if reserved.outcome == "not_running":
            # Cancelled (or otherwise finished) while the graph was still going: Temporal only tells
            # the activity at its next heartbeat, the database tells it now.
            raise RunNotRunningError(f"run {self._run_id} is {reserved.run_status}; no further model calls")
        if reserved.outcome == "released":
            raise RunNotRunningError(f"run {self._run_id} has ended; no further model calls")
        if reserved.outcome == "grant_exhausted":
            assert self._grant_id is not None
            assert grant_max is not None  # only a spend-capped grant is exhausted
            denied = budget_exhausted(self._grant_id, left=reserved.grant_left or 0, max_credits=grant_max)
            raise GrantDeniedError(denied.code, denied.message)
        if reserved.outcome == "insufficient":
            raise CreditsExhaustedError(reserved.needed, reserved.spendable)
        assert reserved.call_id is not None
        return call_key, reserved.call_id, None

    async def _replay(self, call_key: str, request_hash: str) -> tuple[str, ModelResponse | None]:
        """The answer an earlier attempt paid for under this key and request, if any."""
        async with self._db.transaction() as session:
            settled = await model_calls.find_settled(session, run_id=self._run_id, call_key=call_key)
            if settled is not None and settled.request_hash != request_hash:
                # Another request at this position (e.g. a read tool answered differently on the
                # retry): a new call of its own key, never a replay of the other request's answer.
                call_key = f"{call_key}@{request_hash[:16]}"
                settled = await model_calls.find_settled(session, run_id=self._run_id, call_key=call_key)
            if settled is not None and settled.response is not None:
                return call_key, ModelResponse.from_json(settled.response)
        return call_key, None

    async def _check_grant(self, max_credits: int) -> int | None:
        """Checked before every call, so revoking a grant stops a run before its next call; returns
        the grant's spend cap. The cap with the grant's calls in flight is checked again, under the
        account's lock, by the reservation: there concurrent calls of the grant are one state."""
        assert self._grant_id is not None
        async with self._db.transaction() as session:
            grant = await grants.get_grant(session, grant_id=self._grant_id)
            view = None if grant is None else grants.view(grant)
            denied = check_grant(
                view,
                graph_id=self._graph_id,
                now=await grants.database_now(session),
                next_cost_credits=max_credits,
            )
        if denied is not None:
            raise GrantDeniedError(denied.code, denied.message)
        assert view is not None
        return view.max_credits

    async def call(self, call_key: str, request: ModelRequest, invoke: Invoke) -> ModelResponse:
        call_key, call_id, replayed = await self._open(call_key, request)
        if replayed is not None or call_id is None:
            self.replayed += 1
            assert replayed is not None
            return replayed
        stream = TextStream(
            self._db,
            run_id=self._run_id,
            call_key=call_key,
            node=call_key.rsplit(":", 1)[0],
            attempt=self._attempt,
        )
        try:
            # A generation for provider calls only: replayed calls returned above, untraced.
            with self._tracer.model_call(
                self._run,
                attempt=self._attempt,
                call_key=call_key,
                model=request.model,
                messages=request.as_messages(),
                max_tokens=request.max_tokens,
            ) as traced:
                response = await invoke(request, stream)
                await stream.flush()
                traced.record(
                    model=response.model,
                    output=response.text,
                    tokens_in=response.tokens_in,
                    tokens_out=response.tokens_out,
                    cost_usd=response.cost_usd,
                    usage_unit_id=ids.usage_unit_id(run_id=self._run_id, call_key=call_key),
                )
        except ModelCallInterrupted as exc:
            # The provider began answering: it bills what it sent, so the customer is charged for it.
            if exc.partial is not None:
                await stream.flush()
                await self._charge(call_id, call_key, exc.partial, status="partial")
            else:
                await self._close_unsettled(call_id, exc.reason)
            raise
        except ModelGatewayError as exc:
            async with self._db.transaction() as session:
                await model_calls.mark_failed(session, call_id=call_id, error_message=str(exc))
            raise
        except BaseException as exc:
            # Cancelled, or broken in our own code, while the call may have been at the provider.
            await asyncio.shield(
                self._close_unsettled(
                    call_id, f"interrupted by {type(exc).__name__} while at the provider; usage unknown"
                )
            )
            raise
        await self._charge(call_id, call_key, response, status="settled")
        self.calls += 1
        return response

    async def _close_unsettled(self, call_id: str, reason: str) -> None:
        async with self._db.transaction() as session:
            await model_calls.mark_unsettled(session, call_id=call_id, reason=reason)

    async def _charge(self, call_id: str, call_key: str, response: ModelResponse, *, status: str) -> None:
        unit = ids.usage_unit_id(run_id=self._run_id, call_key=call_key)
        credits = charged_credits(response.cost_usd, self._markup)
        charge = ledger.Charge(
            billing_account_id=self._account,
            run_id=self._run_id,
            attempt=self._attempt,
            usage_unit_id=unit,
            source_system=SOURCE_SYSTEM,
            source_reference=ids.charge_source_reference(
                run_id=self._run_id, attempt=self._attempt, usage_unit_id=unit
            ),
            graph_id=self._graph_id,
            model=response.model,
            provider=response.provider,
            tokens_in=response.tokens_in,
            tokens_out=response.tokens_out,
            cost_usd=response.cost_usd,
            markup=self._markup,
            charged_credits=credits,
            grant_id=self._grant_id,
            provider_response_id=response.provider_response_id or None,
        )
        # The call settles, and its usage event (live cost) commits, with the charge that pays for it.
        settlement = ledger.CallSettlement(
            call_id=call_id,
            response=response.to_json(),
            usage_event={
                "call_key": call_key,
                "model": response.model,
                "tokens_in": response.tokens_in,
                "tokens_out": response.tokens_out,
                "cost_usd": str(response.cost_usd),
                "credits": credits,
                "usage_unit_id": unit,
                "provider_response_id": response.provider_response_id,
                "partial": status == "partial",
            },
            status=status,
        )
        # Shielded: a cancellation arriving now waits for the charge instead of dropping it.
        outcome = await asyncio.shield(self._write_in_place(charge, settlement))
        # run_id, workflow_id and node come from the log context (worker interceptor, llm.call).
        log.info(
            "model_call",
            call_key=call_key,
            graph_id=self._graph_id,
            model=response.model,
            provider=response.provider,
            tokens_in=response.tokens_in,
            tokens_out=response.tokens_out,
            cost_usd=str(response.cost_usd),
            credits=credits,
            balance_after=outcome.balance_after,
            receipt_id=outcome.receipt_id,
            charge_attempt=self._attempt,
            usage_unit_id=unit,
            partial=status == "partial",
            duplicate=not outcome.created,
            conflict=outcome.conflict,
        )

    async def _write_in_place(
        self, charge: ledger.Charge, settlement: ledger.CallSettlement
    ) -> ledger.ChargeOutcome:
        """The charge write, retried under the same key (a retry is a no-op if an earlier try
        committed); if every try fails, the call is left unsettled with what it owes."""
        for n in range(CHARGE_WRITE_ATTEMPTS):
            try:
                with counting_charge_failures():
                    return await write_charge(self._db, charge, settlement)
            except Exception as exc:
                if n + 1 < CHARGE_WRITE_ATTEMPTS:
                    await asyncio.sleep(CHARGE_RETRY_DELAYS[min(n, len(CHARGE_RETRY_DELAYS) - 1)])
                    continue
                reason = f"the charge write failed {CHARGE_WRITE_ATTEMPTS} times: {type(exc).__name__}: {exc}"
                try:
                    async with self._db.transaction() as session:
                        await model_calls.mark_unsettled(
                            session, call_id=settlement.call_id, reason=reason, owed=owed(charge, settlement)
                        )
                except Exception as recording:
                    # The call stays pending: the next attempt marks it unsettled, reconciliation flags it.
                    log.error("owed_charge_not_recorded", call_id=settlement.call_id, error=str(recording))
                raise ChargeNotWrittenError(reason) from exc
        raise AssertionError("unreachable")
