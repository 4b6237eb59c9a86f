"""The billing meter bound around a graph run: every model call is recorded before it is made and
charged exactly once after (IDEMPOTENT_CHARGES, NO_SILENT_UNBILLED_CALLS).

A call already settled by an earlier attempt of the same run is answered from its stored response: a
retried execution replays its paid calls instead of paying (and charging) for them again. A replay
needs the same request (its stored request hash): a different request under the same call key is a
new call (key ``{call_key}@{hash}``), never a wrong replay.
"""

from __future__ import annotations

import functools
from decimal import Decimal

import structlog

from activities.events import TextStream
from activities.metrics import counting_charge_failures
from db import grants, ledger, model_calls, reservations, runs
from db.session import Database
from runledger.contracts.grants import GrantErrorCode, check_grant
from runledger.contracts.ids import charge_source_reference
from runledger.contracts.money import charged_credits
from runledger.llm import ModelRequest, ModelResponse
from runledger.llm.context import Invoke
from runledger.telemetry import RunRef, RunTracer

SOURCE_SYSTEM = "litellm"

log = structlog.get_logger(__name__)


class RunNotRunningError(Exception):
    """The run left ``running`` (e.g. it was cancelled) while its graph was executing."""


class CreditsExhaustedError(Exception):
    """Neither the run's hold nor the account's free balance covers the next model call."""

    def __init__(self, needed: int, spendable: int) -> None:
        super().__init__(f"the next model call needs about {needed} credits; {spendable} are available")
        self.needed = needed
        self.spendable = spendable


class GrantDeniedError(Exception):
    """The run's execution grant no longer allows the next model call (GRANT_VALIDATED_TWICE)."""

    def __init__(self, code: GrantErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


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
        grant_id: str | None = None,
        call_estimate_credits: int = 0,
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
        self._grant_id = grant_id
        self._call_estimate = call_estimate_credits
        self.calls = 0
        self.replayed = 0
        #: The dearest call of this run so far: the next call is expected to cost at least as much.
        self.max_call_credits = 0

    def next_call_estimate(self) -> int:
        return max(self._call_estimate, self.max_call_credits)

    async def call(self, call_key: str, request: ModelRequest, invoke: Invoke) -> ModelResponse:
        request_hash = request.fingerprint()
        async with self._db.transaction() as session:
            settled = await model_calls.find_settled(session, run_id=self._run_id, call_key=call_key)
            if settled is not None and settled.request_hash != request_hash:
                # Another request at this position (e.g. a read tool answered differently on the
                # retry): a new call of its own key, never a replay of the other request's answer.
                call_key = f"{call_key}@{request_hash[:16]}"
                settled = await model_calls.find_settled(session, run_id=self._run_id, call_key=call_key)
            if settled is None or settled.response is None:
                status = await runs.status_of(session, run_id=self._run_id)
                if status != "running":
                    # Cancelled (or otherwise finished) while the graph was still going: Temporal only
                    # tells the activity at its next heartbeat, the database tells it now.
                    raise RunNotRunningError(f"run {self._run_id} is {status}; no further model calls")
                if self._grant_id is not None:
                    # Checked before every call, so revoking a grant stops a run before its next call.
                    grant = await grants.get_grant(session, grant_id=self._grant_id)
                    denied = check_grant(
                        None if grant is None else grants.view(grant),
                        graph_id=self._graph_id,
                        now=await grants.database_now(session),
                        next_cost_credits=self._call_estimate,
                    )
                    if denied is not None:
                        raise GrantDeniedError(denied.code, denied.message)
                needed = self.next_call_estimate()
                spendable = await reservations.spendable_for_run(
                    session, billing_account_id=self._account, run_id=self._run_id
                )
                if spendable < needed:
                    raise CreditsExhaustedError(needed, spendable)
                call_id = await model_calls.open_call(
                    session,
                    run_id=self._run_id,
                    call_key=call_key,
                    attempt=self._attempt,
                    model=request.model,
                    request_hash=request_hash,
                )
        if settled is not None and settled.response is not None:
            self.replayed += 1
            replayed = ModelResponse.from_json(settled.response)
            self.max_call_credits = max(
                self.max_call_credits, charged_credits(replayed.cost_usd, self._markup)
            )
            return replayed
        stream = TextStream(self._db, run_id=self._run_id, call_key=call_key, node=call_key.rsplit(":", 1)[0])
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
                    usage_unit_id=response.usage_unit_id,
                )
        except Exception as exc:
            async with self._db.transaction() as session:
                await model_calls.mark_failed(session, call_id=call_id, error_message=str(exc))
            raise
        credits = charged_credits(response.cost_usd, self._markup)
        charge = ledger.Charge(
            billing_account_id=self._account,
            run_id=self._run_id,
            attempt=self._attempt,
            usage_unit_id=response.usage_unit_id,
            source_system=SOURCE_SYSTEM,
            source_reference=charge_source_reference(
                run_id=self._run_id, attempt=self._attempt, usage_unit_id=response.usage_unit_id
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
                "usage_unit_id": response.usage_unit_id,
            },
        )
        with counting_charge_failures():
            outcome = await write_charge(self._db, charge, settlement)
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
            duplicate=not outcome.created,
            conflict=outcome.conflict,
        )
        self.calls += 1
        self.max_call_credits = max(self.max_call_credits, credits)
        return response
