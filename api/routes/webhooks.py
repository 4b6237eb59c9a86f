"""Webhooks: the caller's triggers (create, list, detail, delete), their delivery audit log, and
the delivery endpoint (its checks and the run start are ``api.webhook_receiver``'s).

A trigger's ``kind`` names its sender's signing scheme (``contracts.webhooks``); its ``secret`` is
the sender's (given) or generated, shown once in the creation answer, and stored only encrypted
(``db.secrets``). A source holds at most ``MAX_TRIGGERS_PER_SOURCE`` live triggers (409
``webhook_source_full``): each one costs an HMAC of every delivery.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status

from api.boundary import raw_body
from api.catalog import published_graph, validate_input
from api.deps import StateDep, UserDep
from api.errors import Conflict, NotFound, Unprocessable
from api.notify_urls import check_notify_url
from api.openapi import errors
from api.params import CANONICAL_UUID, Limit, ObjectId, keyset
from api.routes.grants import grant_for_trigger
from api.run_service import own_run
from api.schemas import NotifySecretOut, RunNotificationListResponse, RunNotificationOut
from api.trigger_schemas import (
    CreateWebhookTriggerRequest,
    WebhookDeliveryListResponse,
    WebhookDeliveryOut,
    WebhookDeliveryResponse,
    WebhookTriggerCreated,
    WebhookTriggerListResponse,
    WebhookTriggerOut,
)
from api.webhook_receiver import receive, secret_box
from db import grants, notifications, webhooks
from db.accounts import Principal
from db.pagination import encode_cursor
from db.session import Database
from db.trigger_models import WebhookDelivery, WebhookTrigger
from runledger.contracts import notify as nt
from runledger.contracts import webhooks as wh
from runledger.contracts.errors import ErrorCode

router = APIRouter(prefix="/api/v1", tags=["webhooks"])


def _trigger_fields(row: WebhookTrigger) -> dict[str, Any]:
    return {
        "trigger_id": row.id,
        "source": row.source,
        "kind": row.kind,
        "events": row.events,
        "graph_id": row.graph_id,
        "input": row.input,
        "input_mapping": row.input_mapping,
        "grant_id": row.grant_id,
        "url": f"/api/v1/webhooks/{row.source}",
        "notify_url": row.notify_url,
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
    responses=errors(404, 409),
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
    if body.notify_url is not None:
        check_notify_url(state.settings, body.notify_url)
    secret = body.secret if body.secret is not None else wh.new_secret(body.kind)
    problem = wh.secret_problem(body.kind, secret)
    if problem:
        raise Unprocessable(f"secret: {problem}")
    sealed = secret_box(state).encrypt(secret)
    async with state.database.transaction() as session:
        if await webhooks.count_active_for_source(session, source=body.source) >= wh.MAX_TRIGGERS_PER_SOURCE:
            raise Conflict(
                f"source {body.source!r} already has {wh.MAX_TRIGGERS_PER_SOURCE} live triggers",
                code=ErrorCode.WEBHOOK_SOURCE_FULL,
            )
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
                kind=body.kind,
                events=body.events,
                notify_url=body.notify_url,
                secret_encrypted=sealed,
            ),
        )
    return WebhookTriggerCreated(**_trigger_fields(row), secret=secret)


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


def _delivery_out(row: WebhookDelivery) -> WebhookDeliveryOut:
    return WebhookDeliveryOut(
        id=row.id,
        delivery_id=row.delivery_key,
        source=row.source,
        trigger_id=row.trigger_id,
        event=row.event,
        received_at=row.received_at,
        outcome=row.outcome,
        http_status=row.http_status,
        run_ids=list(row.run_ids),
        body_bytes=row.body_bytes,
        body_sha256=row.body_sha256,
    )


Outcome = Literal[
    "accepted",
    "duplicate",
    "filtered",
    "invalid_signature",
    "stale_timestamp",
    "payload_too_large",
    "invalid_payload",
    "grant_refused",
    "insufficient_credits",
    "unavailable",
]


@router.get("/webhook-deliveries", response_model=WebhookDeliveryListResponse)
async def list_deliveries(
    principal: UserDep,
    state: StateDep,
    source: Annotated[str | None, Query(max_length=63)] = None,
    trigger_id: Annotated[str | None, Query(pattern=CANONICAL_UUID)] = None,
    outcome: Outcome | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> WebhookDeliveryListResponse:
    """The trigger audit log of the caller's sources, newest first (``db.webhooks.list_deliveries``
    says which rows are the caller's)."""
    keys = keyset(cursor, ("int",))
    before = None if keys is None else int(str(keys[0]))
    if trigger_id is not None:
        trigger_id = trigger_id.lower()
    async with state.database.transaction() as session:
        rows = await webhooks.list_deliveries(
            session,
            owner_user_id=principal.user_id,
            filters=webhooks.DeliveryFilters(source=source, trigger_id=trigger_id, outcome=outcome),
            limit=limit + 1,
            before_id=before,
        )
    page, more = rows[:limit], len(rows) > limit
    return WebhookDeliveryListResponse(
        webhook_deliveries=[_delivery_out(r) for r in page],
        next_cursor=encode_cursor([page[-1].id]) if more else None,
    )


@router.post(
    "/webhooks/{source}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookDeliveryResponse,
    responses={
        200: {
            "model": WebhookDeliveryResponse,
            "description": "no new run: a re-delivery (the runs it "
            "started), a filtered event or a GitHub ping",
        },
        **errors(401, 503),
    },
)
@raw_body
async def receive_delivery(
    source: str, request: Request, response: Response, state: StateDep
) -> WebhookDeliveryResponse:
    http_status, answer = await receive(state, source, request)
    response.status_code = http_status
    return answer


@router.get("/me/notify-secret", response_model=NotifySecretOut)
async def notify_secret(principal: UserDep, state: StateDep) -> NotifySecretOut:
    """The Standard Webhooks secret a receiver verifies this account's run notifications with."""
    key = state.settings.notify_signing_key
    if key is None:
        raise NotFound("run notifications are not configured", code=ErrorCode.NOTIFY_URL_NOT_ALLOWED)
    return NotifySecretOut(secret=nt.account_secret(key.get_secret_value(), principal.billing_account_id))


@router.get("/runs/{run_id}/notifications", response_model=RunNotificationListResponse)
async def run_notifications(
    run_id: ObjectId, principal: UserDep, state: StateDep
) -> RunNotificationListResponse:
    """Every attempt to deliver the run's completion notification, oldest first."""
    run = await own_run(state.database, principal, run_id)
    async with state.database.transaction() as session:
        rows = await notifications.list_for_run(session, run_id=run.run_id)
    return RunNotificationListResponse(
        notifications=[
            RunNotificationOut(
                attempt=r.attempt,
                url=r.url,
                http_status=r.http_status,
                error=r.error,
                delivered=r.delivered,
                sent_at=r.sent_at,
            )
            for r in rows
        ]
    )
