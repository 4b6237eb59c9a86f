"""Webhooks: the caller's triggers (create, list, detail, delete) and the delivery endpoint.

A delivery (``POST /api/v1/webhooks/{source}``, the contract in ``contracts.webhooks``) is checked in
this order, and nothing is written before the last step: the source has live triggers (404); the
body fits (413); it is signed, recently, by at least one trigger's secret (401) — before the body is
parsed; the payload is JSON (422) and gives every matching trigger a valid graph input (422). Then,
in one transaction, each matching trigger's run is recorded once (its id derives from the delivery,
so a re-delivery finds it: permanent dedupe) and its workflow started (503 rolls back all). The run
bills the trigger's grant (BILLING_VIA_GRANT); a grant that no longer allows it records the run
``skipped`` with the grant's code (the first of GRANT_VALIDATED_TWICE; authorize is the second).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from api.boundary import parse_json, raw_body
from api.catalog import published_graph, published_graphs, validate_input
from api.deps import StateDep, UserDep
from api.errors import NotFound, PayloadTooLarge, Unauthorized, Unprocessable
from api.openapi import errors
from api.params import ObjectId
from api.routes.grants import grant_for_trigger
from api.run_starts import start_graph_workflow
from api.schemas import (
    CreateWebhookTriggerRequest,
    WebhookDeliveryResponse,
    WebhookRunOut,
    WebhookTriggerCreated,
    WebhookTriggerListResponse,
    WebhookTriggerOut,
)
from db import events, grants, runs, webhooks
from db.accounts import Principal
from db.models import GraphRun, WebhookTrigger
from db.session import Database
from runledger.contracts import ids
from runledger.contracts import webhooks as wh
from runledger.contracts.catalog import GraphSpec
from runledger.contracts.errors import ErrorCode
from runledger.contracts.events import opening_events
from runledger.contracts.grants import check_grant
from runledger.contracts.runs import RunKind, RunStatus

router = APIRouter(prefix="/api/v1", tags=["webhooks"])


def _trigger_fields(row: WebhookTrigger) -> dict[str, Any]:
    return {
        "trigger_id": row.id,
        "source": row.source,
        "graph_id": row.graph_id,
        "input": row.input,
        "input_mapping": row.input_mapping,
        "grant_id": row.grant_id,
        "url": f"/api/v1/webhooks/{row.source}",
        "created_at": row.created_at,
    }


def _trigger_not_found(trigger_id: str) -> NotFound:
    return NotFound(f"webhook trigger {trigger_id} not found", code=ErrorCode.WEBHOOK_TRIGGER_NOT_FOUND)


async def _own_trigger(database: Database, principal: Principal, trigger_id: str) -> WebhookTrigger:
    async with database.transaction() as session:
        row = await webhooks.get_trigger(session, trigger_id=trigger_id, owner_user_id=principal.user_id)
    if row is None:
        raise _trigger_not_found(trigger_id)
    return row


@router.post(
    "/webhook-triggers",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookTriggerCreated,
    responses=errors(404),
)
async def create_trigger(
    body: CreateWebhookTriggerRequest, principal: UserDep, state: StateDep
) -> WebhookTriggerCreated:
    if not wh.SOURCE_PATTERN.match(body.source):
        raise Unprocessable(
            "source must match ^[a-z0-9][a-z0-9_-]{0,62}$ (lower-case letters, digits, - and _)"
        )
    async with state.database.transaction() as session:
        spec = await published_graph(session, body.graph_id)
    bad = {field: pointer for field, pointer in body.input_mapping.items() if not wh.valid_pointer(pointer)}
    if bad:
        raise Unprocessable(f"input_mapping: {bad} are not JSON pointers (RFC 6901: '' or '/a/b')")
    if not body.input_mapping:
        # Every delivery gets exactly this input: a bad one would fail every delivery.
        validate_input(spec, body.input)
    async with state.database.transaction() as session:
        grant, minted = await grant_for_trigger(
            session, principal, graph_id=body.graph_id, grant_id=body.grant_id
        )
        row = await webhooks.insert_trigger(
            session,
            trigger=WebhookTrigger(
                owner_user_id=principal.user_id,
                billing_account_id=grant.billing_account_id,
                grant_id=grant.id,
                owns_grant=minted,
                source=body.source,
                graph_id=body.graph_id,
                input=body.input,
                input_mapping=body.input_mapping,
                secret=wh.new_secret(),
            ),
        )
    return WebhookTriggerCreated(**_trigger_fields(row), secret=row.secret)


@router.get("/webhook-triggers", response_model=WebhookTriggerListResponse)
async def list_triggers(principal: UserDep, state: StateDep) -> WebhookTriggerListResponse:
    async with state.database.transaction() as session:
        rows = await webhooks.list_triggers(session, owner_user_id=principal.user_id)
    return WebhookTriggerListResponse(
        webhook_triggers=[WebhookTriggerOut(**_trigger_fields(r)) for r in rows]
    )


@router.get("/webhook-triggers/{trigger_id}", response_model=WebhookTriggerOut)
async def get_trigger(trigger_id: ObjectId, principal: UserDep, state: StateDep) -> WebhookTriggerOut:
    return WebhookTriggerOut(**_trigger_fields(await _own_trigger(state.database, principal, trigger_id)))


@router.delete("/webhook-triggers/{trigger_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_trigger(trigger_id: ObjectId, principal: UserDep, state: StateDep) -> Response:
    row = await _own_trigger(state.database, principal, trigger_id)
    async with state.database.transaction() as session:
        await webhooks.mark_deleted(session, trigger_id=row.id)
        if row.owns_grant:
            await grants.revoke_grant(session, grant_id=row.grant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _source_not_found(source: str) -> NotFound:
    return NotFound(f"no webhook trigger listens on {source!r}", code=ErrorCode.WEBHOOK_SOURCE_NOT_FOUND)


def _bad_signature(message: str) -> Unauthorized:
    return Unauthorized(message, code=ErrorCode.INVALID_SIGNATURE)


async def _read_body(request: Request) -> bytes:
    """The raw body, refused (413) as soon as it passes the limit: a huge body is never held whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > wh.MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is over {wh.MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > wh.MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body is over {wh.MAX_BODY_BYTES} bytes")
    return bytes(body)


def _signed_by(
    triggers: list[WebhookTrigger],
    body: bytes,
    delivery_id: str | None,
    timestamp: str | None,
    signature: str | None,
) -> tuple[str, list[WebhookTrigger]]:
    """``(delivery_id, triggers whose secret signed this delivery)``, or 401/422."""
    if not delivery_id or not timestamp or not signature:
        raise _bad_signature(
            f"{wh.DELIVERY_HEADER}, {wh.TIMESTAMP_HEADER} and {wh.SIGNATURE_HEADER} are required"
        )
    if not wh.valid_delivery_id(delivery_id):
        raise Unprocessable(f"{wh.DELIVERY_HEADER} must be 1 to 255 printable characters")
    # At most 12 digits: a longer number is no clock time (and overflows the float comparison).
    if not timestamp.strip().isdigit() or len(timestamp.strip()) > 12:
        raise _bad_signature(f"{wh.TIMESTAMP_HEADER} must be Unix seconds")
    signed_at = int(timestamp)
    if abs(time.time() - signed_at) > wh.TOLERANCE_SECONDS:
        raise _bad_signature(
            f"{wh.TIMESTAMP_HEADER} is more than {wh.TOLERANCE_SECONDS} s from the server's clock"
        )
    matched = [
        t
        for t in triggers
        if wh.signature_matches(
            t.secret, timestamp=signed_at, delivery_id=delivery_id, body=body, presented=signature
        )
    ]
    if not matched:
        raise _bad_signature("the signature matches no trigger of this source")
    return delivery_id, matched


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


@router.post(
    "/webhooks/{source}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookDeliveryResponse,
    responses={
        200: {"model": WebhookDeliveryResponse, "description": "a re-delivery: the runs it started"},
        **errors(401, 503),
    },
)
@raw_body
async def receive_delivery(
    source: str,
    request: Request,
    response: Response,
    state: StateDep,
    delivery_id: Annotated[str | None, Header(alias=wh.DELIVERY_HEADER)] = None,
    timestamp: Annotated[str | None, Header(alias=wh.TIMESTAMP_HEADER)] = None,
    signature: Annotated[str | None, Header(alias=wh.SIGNATURE_HEADER)] = None,
) -> WebhookDeliveryResponse:
    if not wh.SOURCE_PATTERN.match(source):
        raise _source_not_found(source)
    async with state.database.transaction() as session:
        triggers = await webhooks.active_for_source(session, source=source)
    if not triggers:
        raise _source_not_found(source)
    body = await _read_body(request)
    delivery, matched = _signed_by(triggers, body, delivery_id, timestamp, signature)
    payload = parse_json(body, code=ErrorCode.INVALID_PAYLOAD)
    async with state.database.transaction() as session:
        specs = await published_graphs(session, [trigger.graph_id for trigger in matched])
    inputs = {trigger.id: _run_input(trigger, specs.get(trigger.graph_id), payload) for trigger in matched}

    out: list[WebhookRunOut] = []
    async with state.database.transaction() as session:
        now = await grants.database_now(session)
        started: list[GraphRun] = []
        for trigger in matched:
            run, created = await _record_run(
                session,
                state.settings.preflight_credits_per_call,
                trigger,
                now=now,
                source=source,
                delivery_id=delivery,
                run_input=inputs[trigger.id],
            )
            if created and run.status == RunStatus.PENDING:
                started.append(run)
            out.append(
                WebhookRunOut(
                    trigger_id=trigger.id, run_id=run.run_id, status=RunStatus(run.status), created=created
                )
            )
        # Last inside the transaction: if Temporal refuses one, no run of this delivery remains.
        for run in started:
            await start_graph_workflow(state.temporal, state.settings, run)
    if not any(r.created for r in out):
        response.status_code = status.HTTP_200_OK
    return WebhookDeliveryResponse(delivery_id=delivery, runs=out)


async def _record_run(
    session: AsyncSession,
    preflight_credits: int,
    trigger: WebhookTrigger,
    *,
    now: datetime,
    source: str,
    delivery_id: str,
    run_input: dict[str, Any],
) -> tuple[GraphRun, bool]:
    grant = await grants.get_grant(session, grant_id=trigger.grant_id)
    denied = check_grant(
        None if grant is None else grants.view(grant),
        graph_id=trigger.graph_id,
        now=now,
        next_cost_credits=preflight_credits,
    )
    run_id = ids.webhook_run_id(source=source, delivery_id=delivery_id, trigger_id=trigger.id)
    run = GraphRun(
        run_id=run_id,
        workflow_id=ids.graph_run_workflow_id(run_id),
        graph_id=trigger.graph_id,
        # The grant's account pays, whoever owns the trigger.
        billing_account_id=grant.billing_account_id if grant else trigger.billing_account_id,
        run_kind=RunKind.SYSTEM_WEBHOOK,
        trigger_source=f"webhook:{source}",
        trigger_ref=delivery_id,
        requested_by=trigger.owner_user_id,
        grant_id=trigger.grant_id,
        webhook_trigger_id=trigger.id,
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
