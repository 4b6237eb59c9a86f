"""The one ledger writer (ONE_LEDGER_WRITER): every charge receipt, every credit_ledger row, every
balance change and every grant spend counter is written here, and nowhere else.

A charge is one receipt + one ledger debit + one balance update (+ the hold settle, the grant spend,
and the settlement of the model call it pays for, with its usage event) written by one SQL
statement, made idempotent by ``UNIQUE(source_system, source_reference)``: a retried write is a
no-op, and the same reference with another amount is recorded in ``charge_conflicts`` and never
applied. The worker runs it alone in autocommit (``charge_once`` through
``Database.single_statement``); ``record_charge`` runs it in a caller's transaction and resolves
what the statement alone cannot. Top-ups are idempotent by ``UNIQUE(reason, reference)``.

Besides the writes, only the two reads that belong to them: an account's cached balance and a run's
charge totals. Listing the ledger and receipts, and summing the ledger, are in ``db.ledger_reads``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy import BigInteger, Text, Uuid, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db import events, model_calls
from db.errors import NotFoundError, TopupConflictError
from db.models import (
    BillingAccount,
    ChargeConflict,
    ChargeReceipt,
    CreditLedgerEntry,
)
from db.session import driver_connection

TOPUP = "topup"
CHARGE = "charge_receipt"


@dataclass(frozen=True)
class Charge:
    billing_account_id: str
    run_id: str
    attempt: int
    usage_unit_id: str
    source_system: str
    source_reference: str
    graph_id: str
    model: str
    provider: str | None
    tokens_in: int
    tokens_out: int
    cost_usd: Decimal
    markup: Decimal
    charged_credits: int
    #: The execution grant the run bills under; its spend counter moves with the charge.
    grant_id: str | None = None
    #: The provider's own response id, kept on the receipt (never part of the key).
    provider_response_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The charge as JSON (money as strings), kept on a call whose charge write failed."""
        data = asdict(self)
        data["cost_usd"] = str(self.cost_usd)
        data["markup"] = str(self.markup)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Charge:
        return cls(
            **{**data, "cost_usd": Decimal(str(data["cost_usd"])), "markup": Decimal(str(data["markup"]))}
        )


@dataclass(frozen=True)
class ChargeOutcome:
    receipt_id: str
    created: bool
    conflict: bool = False
    balance_after: int | None = None


async def _apply(
    session: AsyncSession,
    *,
    billing_account_id: str,
    amount: int,
    reason: str,
    reference: str,
    run_id: str | None = None,
    receipt_id: str | None = None,
) -> CreditLedgerEntry:
    # One statement: the balance update and the ledger row that records it. The account row is
    # the hot spot of a busy account (every charge locks it), so it is held for as short as possible.
    new_balance = (
        update(BillingAccount)
        .where(BillingAccount.id == billing_account_id)
        .values(balance_credits=BillingAccount.balance_credits + amount)
        .returning(BillingAccount.balance_credits)
        .cte("new_balance")
    )
    entry = (
        await session.execute(
            insert(CreditLedgerEntry)
            .from_select(
                [
                    "billing_account_id",
                    "amount",
                    "balance_after",
                    "reason",
                    "reference",
                    "run_id",
                    "receipt_id",
                ],
                select(
                    literal(billing_account_id, Uuid(as_uuid=False)),
                    literal(amount, BigInteger()),
                    new_balance.c.balance_credits,
                    literal(reason, Text()),
                    literal(reference, Text()),
                    literal(run_id, Uuid(as_uuid=False)),
                    literal(receipt_id, Uuid(as_uuid=False)),
                ),
            )
            .returning(CreditLedgerEntry)
        )
    ).scalar_one_or_none()
    if entry is None:
        raise NotFoundError("billing account", billing_account_id)
    return entry


@dataclass(frozen=True)
class CallSettlement:
    """The model call a charge pays for. The charge statement settles it into the receipt and appends
    its ``usage`` event (with the account's ``balance_after``), so the call, the debit and the live
    cost commit together or not at all."""

    call_id: str
    #: The stored provider response: a retried execution replays it instead of paying again.
    response: dict[str, Any]
    #: The ``usage`` event's payload; the statement adds ``balance_after``.
    usage_event: dict[str, Any]
    #: ``settled`` (a whole answer, replayed by a retried execution) or ``partial`` (a broken stream
    #: charged for what arrived: the call is made again).
    status: str = "settled"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallSettlement:
        return cls(**data)


#: The whole charge in one statement: receipt, hold settle, grant spend, balance, ledger row, and —
#: when a call is given — the call's settlement and its usage event. One statement is one round trip,
#: and run through ``Database.single_statement()`` it is its own transaction: the account row, the hot spot
#: of a busy account, is locked only while the server executes and commits it, never across a client
#: round trip. Every data-modifying CTE reads from ``receipt``: when the receipt already exists (a
#: retried delivery), ON CONFLICT returns no row and nothing else changes; the second branch of the
#: final SELECT then reports the existing receipt, if this statement's snapshot sees it with the same
#: amount and account and the call already settled — a plain retried delivery, done in one round
#: trip. Anything else (a conflicting amount, a receipt committed by a concurrent delivery after the
#: snapshot) returns no row and is resolved by ``record_charge`` in a transaction.
#: Written for psycopg directly (``%(name)s`` parameters): this is the hottest statement there is.
_CHARGE_SQL = """
WITH receipt AS (
    INSERT INTO charge_receipts (
        billing_account_id, run_id, attempt, usage_unit_id, source_system, source_reference,
        graph_id, model, provider, tokens_in, tokens_out, cost_usd, markup, charged_credits,
        provider_response_id
    )
    VALUES (
        CAST(%(account)s AS uuid), CAST(%(run_id)s AS uuid), %(attempt)s, %(usage_unit_id)s,
        %(source_system)s, %(source_reference)s, %(graph_id)s, %(model)s, %(provider)s,
        %(tokens_in)s, %(tokens_out)s, %(cost_usd)s, %(markup)s, %(credits)s, %(provider_response_id)s
    )
    ON CONFLICT (source_system, source_reference) DO NOTHING
    RETURNING id, charged_credits
), hold AS (
    -- The charge settles against the run's hold: what the run still holds shrinks as it spends.
    UPDATE credit_reservations SET settled_credits = settled_credits + receipt.charged_credits
    FROM receipt
    WHERE credit_reservations.run_id = CAST(%(run_id)s AS uuid) AND credit_reservations.status = 'open'
    RETURNING credit_reservations.id
), grant_spend AS (
    UPDATE execution_grants SET spent_credits = spent_credits + receipt.charged_credits
    FROM receipt
    WHERE execution_grants.id = CAST(%(grant_id)s AS uuid)
    RETURNING execution_grants.id
), settled_call AS (
    UPDATE model_calls
    SET status = %(call_status)s, usage_unit_id = %(usage_unit_id)s,
        provider_response_id = %(provider_response_id)s, response = CAST(%(response)s AS jsonb),
        receipt_id = receipt.id, charge = NULL, settled_at = now()
    FROM receipt
    WHERE model_calls.id = CAST(%(call_id)s AS uuid)
    RETURNING model_calls.id
), event_seq AS (
    -- As db.events.append: the run row's counter gives the next gap-free sequence number.
    UPDATE graph_runs SET event_seq = event_seq + 1
    FROM receipt
    WHERE graph_runs.run_id = CAST(%(run_id)s AS uuid) AND CAST(%(usage_event)s AS jsonb) IS NOT NULL
    RETURNING graph_runs.event_seq
), balance AS (
    UPDATE billing_accounts SET balance_credits = balance_credits - receipt.charged_credits
    FROM receipt
    WHERE billing_accounts.id = CAST(%(account)s AS uuid)
    RETURNING billing_accounts.balance_credits
), entry AS (
    INSERT INTO credit_ledger (billing_account_id, amount, balance_after, reason, reference, run_id, receipt_id)
    SELECT CAST(%(account)s AS uuid), -receipt.charged_credits, balance.balance_credits, %(reason)s,
           %(source_reference)s, CAST(%(run_id)s AS uuid), receipt.id
    FROM receipt, balance
    RETURNING balance_after
), usage_event AS (
    INSERT INTO run_events (run_id, seq, event, data)
    SELECT CAST(%(run_id)s AS uuid), event_seq.event_seq, 'usage',
           CAST(%(usage_event)s AS jsonb) || jsonb_build_object('balance_after', entry.balance_after)
    FROM event_seq, entry
    RETURNING seq
), notified AS (
    SELECT pg_notify(CAST(%(channel)s AS text), CAST(%(run_id)s AS text)) FROM usage_event
)
SELECT receipt.id, entry.balance_after, true AS created, (SELECT count(*) FROM notified) AS notified
FROM receipt, entry
UNION ALL
SELECT existing.id, NULL, false, 0
FROM charge_receipts AS existing
WHERE existing.source_system = %(source_system)s AND existing.source_reference = %(source_reference)s
  AND existing.charged_credits = %(credits)s AND existing.billing_account_id = CAST(%(account)s AS uuid)
  AND NOT EXISTS (SELECT FROM receipt)
  AND (CAST(%(call_id)s AS uuid) IS NULL OR EXISTS (
      SELECT FROM model_calls WHERE id = CAST(%(call_id)s AS uuid) AND status IN ('settled', 'partial')))
"""


async def charge_once(
    conn: psycopg.AsyncConnection[Any], *, charge: Charge, call: CallSettlement | None = None
) -> ChargeOutcome | None:
    """The charge statement alone, on a connection from ``Database.single_statement()``: the outcome when
    this delivery wrote the receipt or was a plain retry of a settled one; ``None`` when the
    reference needs :func:`record_charge` (an amount conflict, or a concurrent first delivery)."""
    cursor = await conn.execute(
        _CHARGE_SQL,
        {
            "account": charge.billing_account_id,
            "run_id": charge.run_id,
            "attempt": charge.attempt,
            "usage_unit_id": charge.usage_unit_id,
            "source_system": charge.source_system,
            "source_reference": charge.source_reference,
            "graph_id": charge.graph_id,
            "model": charge.model,
            "provider": charge.provider,
            "tokens_in": charge.tokens_in,
            "tokens_out": charge.tokens_out,
            "cost_usd": charge.cost_usd,
            "markup": charge.markup,
            "credits": charge.charged_credits,
            "grant_id": charge.grant_id,
            "provider_response_id": charge.provider_response_id,
            "call_status": "settled" if call is None else call.status,
            "reason": CHARGE,
            "call_id": None if call is None else call.call_id,
            "response": None if call is None else json.dumps(call.response),
            "usage_event": None if call is None else json.dumps(call.usage_event),
            "channel": events.CHANNEL,
        },
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    receipt_id, balance_after, created, _ = row
    return ChargeOutcome(
        receipt_id=str(receipt_id),
        created=bool(created),
        balance_after=None if balance_after is None else int(balance_after),
    )


async def record_charge(
    session: AsyncSession, *, charge: Charge, call: CallSettlement | None = None
) -> ChargeOutcome:
    """Write a charge exactly once, in the caller's transaction. Safe under concurrent duplicate
    deliveries: the loser of the UNIQUE race waits for the winner's commit and then sees the existing
    receipt. A duplicate with another amount is recorded in ``charge_conflicts``, never applied; its
    call (if any and not settled yet) is settled into the existing receipt."""
    outcome = await charge_once(await driver_connection(session), charge=charge, call=call)
    if outcome is not None:
        return outcome
    existing = (
        await session.execute(
            select(ChargeReceipt).where(
                ChargeReceipt.source_system == charge.source_system,
                ChargeReceipt.source_reference == charge.source_reference,
            )
        )
    ).scalar_one_or_none()
    if existing is None:
        # Unreachable: ON CONFLICT returned nothing, so a receipt holds this reference. Fail loudly.
        raise RuntimeError(f"charge {charge.source_reference} conflicted with no receipt")
    same = (
        existing.charged_credits == charge.charged_credits
        and existing.billing_account_id == charge.billing_account_id
    )
    if not same:
        session.add(
            ChargeConflict(
                source_system=charge.source_system,
                source_reference=charge.source_reference,
                existing_receipt_id=existing.id,
                existing_credits=existing.charged_credits,
                attempted_credits=charge.charged_credits,
            )
        )
        await session.flush()
    settled = call is not None and await model_calls.settle(
        session,
        call_id=call.call_id,
        status=call.status,
        provider_response_id=charge.provider_response_id,
        response=call.response,
        receipt_id=existing.id,
    )
    if call is not None and settled:
        # A call not yet settled reports its usage once; nothing new was debited, so no balance_after.
        await events.append(
            session, run_id=charge.run_id, events=[("usage", {**call.usage_event, "balance_after": None})]
        )
    return ChargeOutcome(receipt_id=existing.id, created=False, conflict=not same)


async def record_topup(
    session: AsyncSession, *, billing_account_id: str, amount: int, reference: str
) -> tuple[CreditLedgerEntry, bool]:
    """Credit an account once per reference. Returns ``(entry, created)``; the same reference with
    another amount or account raises :class:`TopupConflictError`."""
    if amount <= 0:
        raise ValueError("a top-up amount must be positive")
    existing = await _find_entry(session, reason=TOPUP, reference=reference)
    if existing is None:
        try:
            async with session.begin_nested():
                return (
                    await _apply(
                        session,
                        billing_account_id=billing_account_id,
                        amount=amount,
                        reason=TOPUP,
                        reference=reference,
                    ),
                    True,
                )
        except IntegrityError:
            # A concurrent request with the same reference committed first.
            existing = await _find_entry(session, reason=TOPUP, reference=reference)
            if existing is None:
                raise
    if existing.amount != amount or existing.billing_account_id != billing_account_id:
        raise TopupConflictError(reference)
    return existing, False


async def _find_entry(session: AsyncSession, *, reason: str, reference: str) -> CreditLedgerEntry | None:
    result = await session.execute(
        select(CreditLedgerEntry).where(
            CreditLedgerEntry.reason == reason, CreditLedgerEntry.reference == reference
        )
    )
    return result.scalar_one_or_none()


async def get_balance(session: AsyncSession, *, billing_account_id: str) -> int:
    balance = (
        await session.execute(
            select(BillingAccount.balance_credits).where(BillingAccount.id == billing_account_id)
        )
    ).scalar_one_or_none()
    if balance is None:
        raise NotFoundError("billing account", billing_account_id)
    return balance


async def run_charge_totals(session: AsyncSession, *, run_id: str) -> tuple[int, int]:
    """``(receipts, charged_credits)`` of a run."""
    row = (
        await session.execute(
            select(
                func.count(ChargeReceipt.id), func.coalesce(func.sum(ChargeReceipt.charged_credits), 0)
            ).where(ChargeReceipt.run_id == run_id)
        )
    ).one()
    return int(row[0]), int(row[1])
