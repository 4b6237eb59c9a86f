"""``POST /api/v1/webhooks/{source}``: a sender's delivery becomes runs (TRIGGERS_ONLY_START_RUNS).

Checked in this order; nothing but the audit row is written before the last step:

1. The body fits (413 ``payload_too_large``; a declared or streamed size past the limit stops the
   read, so a huge body is never held whole).
2. It is signed by at least one live trigger of the source, each checked by its own ``kind``
   (``contracts.webhooks``), before the body is parsed. An unknown source, a wrong secret, an
   altered body and a timestamp outside ±300 s all get the same answer — 401 ``invalid_signature``
   with one message — and an unknown source costs a decoy HMAC like a known one with one trigger,
   so a stranger cannot tell whether a source exists. The audit row keeps the precise outcome
   (``invalid_signature`` or ``stale_timestamp``).
3. The payload is JSON and carries what its kind needs (the Stripe event ``id`` and ``type``, GitHub's
   delivery and event headers) (422 ``invalid_payload``), and gives every firing trigger a valid graph
   input (422 ``validation_error``).
4. Triggers whose ``events`` do not name the event, and every trigger on a GitHub ``ping``, are
   ``filtered``: recorded, no run. The others record their run once — its id derives from the
   delivery key, so a re-delivery finds it (permanent dedupe, answered 200 with the same runs) — in
   one transaction with the audit rows; commit; then each new (or still ``pending``) run's workflow
   is started. When Temporal refuses, the runs stay recorded ``pending`` and the answer is 503: the
   sender's retry of the same delivery starts them, as does the run sweeper.

The run bills the trigger's grant (BILLING_VIA_GRANT). Its trigger-time preflight is the API start's
(``db.preflight``, LiteLLM prices): a grant that no longer allows it records the run ``skipped`` with
the grant's code and the row ``grant_refused`` (the first check of GRANT_VALIDATED_TWICE; authorize
is the second); an account whose available credits do not cover the run's estimate records it
``skipped`` / ``insufficient_credits`` (row ``insufficient_credits``) — the API start's 402, without
asking a sender to pay. Such runs are announced to their ``notify_url`` from here.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from api.boundary import parse_json
from api.catalog import published_graphs, validate_input
from api.deps import AppState
from api.errors import AppError, PayloadTooLarge, ServiceUnavailable, Unauthorized, Unprocessable
from api.notify_urls import announce_ended
from api.run_starts import start_recorded_run
from api.trigger_schemas import WebhookDeliveryResponse, WebhookRunOut
from api.webhook_audit import UNKNOWN_SOURCES
from db import events, grants, preflight, runs, webhooks
from db.models import GraphRun
from db.secrets import InvalidToken, SecretBox
from db.trigger_models import WebhookDelivery, WebhookTrigger
from runledger.contracts import ids
from runledger.contracts import webhooks as wh
from runledger.contracts.catalog import GraphSpec
from runledger.contracts.errors import ErrorCode
from runledger.contracts.events import opening_events
from runledger.contracts.runs import RunKind, RunStatus

log = structlog.get_logger(__name__)

#: The one answer to every delivery no trigger of the source verifies (unknown source included).
BAD_SIGNATURE_MESSAGE = (
    "no webhook trigger of this source verifies the delivery's signature "
    "(unknown source, wrong secret, altered body, or a timestamp more than 300 s off)"
)
#: Keys the decoy check of an unknown source (never a trigger's secret).
_DECOY_SECRET = "whsec_" + "A" * 43 + "="


@dataclass
class _Refused(Exception):
    """A refusal, with what its audit rows record."""

    outcome: str
    error: AppError
    signed_by: list[WebhookTrigger] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    event: str | None = None


@dataclass
class _Body:
    size: int = 0
    sha256: str | None = None


def secret_box(state: AppState) -> SecretBox:
    if state.secrets is None:
        raise ServiceUnavailable(
            "RUNLEDGER_SECRET_KEYS is not configured: webhook secrets cannot be read",
            code=ErrorCode.SECRET_KEYS_MISSING,
        )
    return state.secrets


async def _read_body(request: Request, seen: _Body) -> bytes:
    def too_large() -> _Refused:
        return _Refused("payload_too_large", PayloadTooLarge(f"the body is over {wh.MAX_BODY_BYTES} bytes"))

    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > wh.MAX_BODY_BYTES:
        seen.size = int(declared)
        raise too_large()
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        seen.size = len(body)
        if len(body) > wh.MAX_BODY_BYTES:
            raise too_large()
    seen.sha256 = hashlib.sha256(body).hexdigest()
    return bytes(body)


def _signed_by(
    box: SecretBox, triggers: list[WebhookTrigger], headers: dict[str, str], body: bytes
) -> list[WebhookTrigger]:
    now = time.time()
    if not triggers:
        wh.verify("standard", _DECOY_SECRET, headers, body, now=now)  # same work as one trigger
        raise _Refused(
            "invalid_signature", Unauthorized(BAD_SIGNATURE_MESSAGE, code=ErrorCode.INVALID_SIGNATURE)
        )
    verdicts = [(t, _verify(box, t, headers, body, now)) for t in triggers]
    matched = [t for t, verdict in verdicts if verdict is wh.Verdict.SIGNED]
    if matched:
        return matched
    stale = any(verdict is wh.Verdict.STALE for _, verdict in verdicts)
    raise _Refused(
        "stale_timestamp" if stale else "invalid_signature",
        Unauthorized(BAD_SIGNATURE_MESSAGE, code=ErrorCode.INVALID_SIGNATURE),
    )


def _verify(
    box: SecretBox, trigger: WebhookTrigger, headers: dict[str, str], body: bytes, now: float
) -> wh.Verdict:
    try:
        secret = box.decrypt(trigger.secret_encrypted)
    except InvalidToken:
        # Encrypted under a key no longer configured: this trigger cannot verify anything.
        log.error("webhook_secret_undecryptable", trigger_id=trigger.id)
        return wh.Verdict.INVALID
    return wh.verify(wh_kind(trigger), secret, headers, body, now=now)


def wh_kind(trigger: WebhookTrigger) -> wh.Kind:
    kind = trigger.kind
    if kind not in wh.KINDS:  # the table's CHECK makes this impossible
        raise RuntimeError(f"trigger {trigger.id} has unknown kind {kind!r}")
    return kind


def _run_input(trigger: WebhookTrigger, spec: GraphSpec | None, payload: Any) -> dict[str, Any]:
    if spec is None:
        raise Unprocessable(f"trigger {trigger.id}: graph {trigger.graph_id!r} no longer exists")
    try:
        built = wh.build_input(trigger.input, trigger.input_mapping, payload)
    except wh.InputMappingError as exc:
        raise Unprocessable(f"trigger {trigger.id}: {exc}") from exc
    try:
        validate_input(spec, built)
    except Unprocessable as exc:
        raise Unprocessable(f"trigger {trigger.id}: {exc.message}") from exc
    return built


async def receive(state: AppState, source: str, request: Request) -> tuple[int, WebhookDeliveryResponse]:
    """``(http_status, answer)`` of an accepted delivery; raises the refusal's ``AppError``."""
    box = secret_box(state)
    triggers: list[WebhookTrigger] = []
    if wh.SOURCE_PATTERN.match(source):
        async with state.database.transaction() as session:
            triggers = await webhooks.active_for_source(
                session, source=source, limit=wh.MAX_TRIGGERS_PER_SOURCE
            )
    seen = _Body()
    try:
        return await _accept(state, box, source, triggers, request, seen)
    except _Refused as refused:
        await _record_refusal(state, source, bool(triggers), seen, refused)
        raise refused.error from None


async def _accept(
    state: AppState,
    box: SecretBox,
    source: str,
    triggers: list[WebhookTrigger],
    request: Request,
    seen: _Body,
) -> tuple[int, WebhookDeliveryResponse]:
    body = await _read_body(request, seen)
    headers = {name.lower(): value for name, value in request.headers.items()}
    matched = _signed_by(box, triggers, headers, body)
    try:
        # Bounded like every JSON the API takes (depth, integer range, finite numbers).
        payload = parse_json(body, code=ErrorCode.INVALID_PAYLOAD)
    except Unprocessable as exc:
        raise _Refused("invalid_payload", exc, matched) from None
    keys: dict[str, str] = {}
    names: dict[str, tuple[str, ...]] = {}
    for trigger in matched:
        try:
            keys[trigger.id] = wh.delivery_key(wh_kind(trigger), headers, payload)
            names[trigger.id] = wh.event_names(wh_kind(trigger), headers, payload)
        except wh.DeliveryError as exc:
            error = Unprocessable(str(exc), code=ErrorCode.INVALID_PAYLOAD)
            raise _Refused("invalid_payload", error, matched, keys) from None
    event = next((n[0] for n in names.values() if n), None)
    firing = [
        t for t in matched if not wh.is_ping(wh_kind(t), names[t.id]) and wh.wanted(t.events, names[t.id])
    ]
    filtered = [t for t in matched if t not in firing]
    async with state.database.transaction() as session:
        specs = await published_graphs(session, [t.graph_id for t in firing])
    try:
        inputs = {t.id: _run_input(t, specs.get(t.graph_id), payload) for t in firing}
    except Unprocessable as exc:
        raise _Refused("invalid_payload", exc, matched, keys, event) from None

    out: list[WebhookRunOut] = []
    to_start: list[GraphRun] = []
    ended: list[GraphRun] = []
    try:
        async with state.database.transaction() as session:
            now = await grants.database_now(session)
            rows: list[WebhookDelivery] = []
            for trigger in firing:
                run, created = await _record_run(
                    session,
                    state.settings.markup,
                    trigger,
                    specs.get(trigger.graph_id),
                    now=now,
                    source=source,
                    delivery_key=keys[trigger.id],
                    run_input=inputs[trigger.id],
                )
                if run.status == RunStatus.PENDING:
                    # New, or recorded by an earlier delivery whose start Temporal did not take.
                    to_start.append(run)
                out.append(
                    WebhookRunOut(
                        trigger_id=trigger.id,
                        run_id=run.run_id,
                        status=RunStatus(run.status),
                        created=created,
                    )
                )
                if not created:
                    outcome = "duplicate"
                elif run.status == RunStatus.SKIPPED:
                    ended.append(run)  # refused here: announced here, no workflow will finalize it
                    credits = run.error_code == ErrorCode.INSUFFICIENT_CREDITS
                    outcome = "insufficient_credits" if credits else "grant_refused"
                else:
                    outcome = "accepted"
                rows.append(_row(source, seen, outcome, 0, trigger, keys[trigger.id], event, [run.run_id]))
            rows += [_row(source, seen, "filtered", 0, t, keys[t.id], event, []) for t in filtered]
            http_status = 202 if any(r.created for r in out) else 200
            for row in rows:
                row.http_status = http_status
            await webhooks.record_deliveries(session, rows)
    except preflight.ModelNotPriced as exc:
        # Before any worker published a price: answered like an API start, no run recorded (the
        # sender's retry is taken once a worker is up), the delivery logged ``unavailable``.
        async with state.database.transaction() as session:
            await webhooks.record_deliveries(
                session,
                [_row(source, seen, "unavailable", 503, t, keys[t.id], event, []) for t in firing],
            )
        raise ServiceUnavailable(str(exc), code=ErrorCode.MODEL_NOT_PRICED) from None
    # Committed: the runs exist before any workflow does (the start protocol of api.run_starts).
    await announce_ended(state.temporal, state.settings, ended)
    try:
        for run in to_start:
            await start_recorded_run(state.database, state.temporal, state.settings, run, retryable=True)
    except ServiceUnavailable:
        async with state.database.transaction() as session:
            await webhooks.set_delivery_status(session, ids=[r.id for r in rows], http_status=503)
        raise
    first_key = keys[matched[0].id]
    answer = WebhookDeliveryResponse(
        delivery_id=first_key, event=event, runs=out, filtered_trigger_ids=[t.id for t in filtered]
    )
    return http_status, answer


def _row(
    source: str,
    seen: _Body,
    outcome: str,
    http_status: int,
    trigger: WebhookTrigger | None,
    key: str | None,
    event: str | None,
    run_ids: list[str],
) -> WebhookDelivery:
    return WebhookDelivery(
        source=source[:63],
        trigger_id=None if trigger is None else trigger.id,
        delivery_key=key,
        event=None if event is None else event[:200],
        outcome=outcome,
        http_status=http_status,
        run_ids=run_ids,
        body_bytes=seen.size,
        body_sha256=seen.sha256,
    )


async def _record_refusal(state: AppState, source: str, known: bool, seen: _Body, refused: _Refused) -> None:
    status = refused.error.status_code
    if refused.signed_by:
        rows = [
            _row(source, seen, refused.outcome, status, t, refused.keys.get(t.id), refused.event, [])
            for t in refused.signed_by
        ]
    elif state.webhook_refusals.take(source if known else UNKNOWN_SOURCES):
        rows = [_row(source, seen, refused.outcome, status, None, None, None, [])]
    else:
        return
    async with state.database.transaction() as session:
        await webhooks.record_deliveries(session, rows)


async def _record_run(
    session: AsyncSession,
    markup: Decimal,
    trigger: WebhookTrigger,
    spec: GraphSpec | None,
    *,
    now: datetime,
    source: str,
    delivery_key: str,
    run_input: dict[str, Any],
) -> tuple[GraphRun, bool]:
    grant = await grants.get_grant(session, grant_id=trigger.grant_id)
    # Priced like an API start (db.preflight): the grant's room for a call, the account's credits.
    denied = await preflight.trigger_refusal(
        session, grant=grant, graph_id=trigger.graph_id, spec=spec, payload=run_input, markup=markup, now=now
    )
    run_id = ids.webhook_run_id(source=source, delivery_id=delivery_key, trigger_id=trigger.id)
    run = GraphRun(
        run_id=run_id,
        workflow_id=ids.graph_run_workflow_id(run_id),
        graph_id=trigger.graph_id,
        # The grant's account pays, whoever owns the trigger.
        billing_account_id=grant.billing_account_id if grant else trigger.billing_account_id,
        run_kind=RunKind.SYSTEM_WEBHOOK,
        trigger_source=f"webhook:{source}",
        trigger_ref=delivery_key,
        requested_by=trigger.owner_user_id,
        grant_id=trigger.grant_id,
        webhook_trigger_id=trigger.id,
        notify_url=trigger.notify_url,
        input=run_input,
        status=RunStatus.PENDING if denied is None else RunStatus.SKIPPED,
        error_code=None if denied is None else denied.code,
        error_message=None if denied is None else denied.message,
        completed_at=None if denied is None else now,
        trace_id=ids.langfuse_trace_id(run_id),
    )
    recorded, created = await runs.insert_run_once(session, run=run)
    if created:
        initial = opening_events(
            recorded.status, error_code=recorded.error_code, error_message=recorded.error_message
        )
        await events.append(session, run_id=recorded.run_id, events=initial)
    return recorded, created
