"""Routes: /api/v1/webhooks (outbound endpoints and their delivery log) and incoming hooks."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from tenure.auth.dependencies import Admin, Reader
from tenure.deps import DB, State
from tenure.kit.errors import TenureError
from tenure.webhooks import service
from tenure.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookStatus
from tenure.webhooks.schemas import (
    AttemptRead,
    DeliveryDetail,
    DeliveryPage,
    DeliveryRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    EndpointSecret,
    EndpointUpdate,
    HookAccepted,
    HookCreate,
    HookCreated,
    HookRead,
    ReplayRange,
    ReplayResult,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
deliveries_router = APIRouter(prefix="/api/v1/webhook-deliveries", tags=["webhooks"])
hooks_admin = APIRouter(prefix="/api/v1/incoming-hooks", tags=["incoming hooks"])
hooks_public = APIRouter(prefix="/api/v1/hooks", tags=["incoming hooks"])

MAX_HOOK_BYTES = 256 * 1024


class MalformedHook(TenureError):
    status = 400
    title = "Malformed JSON"
    type_slug = "malformed-json"


class HookTooLarge(TenureError):
    status = 413
    title = "Payload too large"
    type_slug = "payload-too-large"


def _endpoint(endpoint: WebhookEndpoint) -> EndpointRead:
    return EndpointRead.model_validate(endpoint)


def _delivery(delivery: WebhookDelivery) -> DeliveryRead:
    return DeliveryRead(
        id=delivery.id,
        webhook_id=service.webhook_id(delivery.id),
        endpoint_id=delivery.endpoint_id,
        outbox_id=delivery.outbox_id,
        event_type=delivery.event_type,
        account_id=delivery.account_id,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=(
            delivery.next_attempt_at if delivery.status == WebhookStatus.pending.value else None
        ),
        last_status_code=delivery.last_status_code,
        last_latency_ms=delivery.last_latency_ms,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
    )


@router.get("", response_model=list[EndpointRead], summary="List webhook endpoints")
def list_endpoints(db: DB, _: Admin) -> list[EndpointRead]:
    return [_endpoint(e) for e in service.list_endpoints(db)]


@router.post(
    "",
    response_model=EndpointCreated,
    status_code=201,
    summary="Create an endpoint (the response holds its signing secret)",
)
def create_endpoint(body: EndpointCreate, db: DB, state: State, actor: Admin) -> EndpointCreated:
    endpoint = service.create_endpoint(
        db,
        body,
        actor=actor,
        now=state.clock.now(),
        allow_private=state.settings.allow_private_destinations,
    )
    return EndpointCreated(**_endpoint(endpoint).model_dump(), secret=endpoint.secret)


@router.get("/{endpoint_id}", response_model=EndpointRead)
def get_endpoint(endpoint_id: uuid.UUID, db: DB, _: Admin) -> EndpointRead:
    return _endpoint(service.get_endpoint(db, endpoint_id))


@router.patch("/{endpoint_id}", response_model=EndpointRead)
def update_endpoint(
    endpoint_id: uuid.UUID, body: EndpointUpdate, db: DB, state: State, actor: Admin
) -> EndpointRead:
    endpoint = service.update_endpoint(
        db,
        endpoint_id,
        body,
        actor=actor,
        now=state.clock.now(),
        allow_private=state.settings.allow_private_destinations,
    )
    return _endpoint(endpoint)


@router.delete("/{endpoint_id}", status_code=204)
def delete_endpoint(endpoint_id: uuid.UUID, db: DB, state: State, actor: Admin) -> Response:
    service.delete_endpoint(db, endpoint_id, actor=actor, now=state.clock.now())
    return Response(status_code=204)


@router.get("/{endpoint_id}/secret", response_model=EndpointSecret)
def get_secret(endpoint_id: uuid.UUID, db: DB, _: Admin) -> EndpointSecret:
    endpoint = service.get_endpoint(db, endpoint_id)
    return EndpointSecret(
        secret=endpoint.secret, previous_secret_expires_at=endpoint.previous_secret_expires_at
    )


@router.post(
    "/{endpoint_id}/rotate-secret",
    response_model=EndpointSecret,
    summary="New signing secret; the old one also signs for 24 hours",
)
def rotate_secret(endpoint_id: uuid.UUID, db: DB, state: State, actor: Admin) -> EndpointSecret:
    endpoint = service.rotate_secret(db, endpoint_id, actor=actor, now=state.clock.now())
    return EndpointSecret(
        secret=endpoint.secret, previous_secret_expires_at=endpoint.previous_secret_expires_at
    )


@router.post("/{endpoint_id}/test", status_code=202, summary="Queue a webhook.test event")
def test_endpoint(endpoint_id: uuid.UUID, db: DB, state: State, actor: Admin) -> dict[str, Any]:
    outbox_id = service.send_test(db, endpoint_id, actor=actor, now=state.clock.now())
    return {"queued": True, "event_id": outbox_id}


@router.get("/{endpoint_id}/deliveries", response_model=DeliveryPage)
def list_deliveries(
    endpoint_id: uuid.UUID,
    db: DB,
    _: Admin,
    status: WebhookStatus | None = None,
    event_type: str | None = None,
    account_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
) -> DeliveryPage:
    service.get_endpoint(db, endpoint_id)
    page = service.list_deliveries(
        db,
        endpoint_id=endpoint_id,
        status=status.value if status else None,
        event_type=event_type,
        account_id=account_id,
        cursor=cursor,
        limit=limit,
    )
    return DeliveryPage(
        items=[_delivery(d) for d in page.items],
        next_cursor=page.next_cursor,
        prev_cursor=page.prev_cursor,
    )


@router.post(
    "/{endpoint_id}/replay",
    response_model=ReplayResult,
    summary="Send again the deliveries of a time range",
)
def replay_range(
    endpoint_id: uuid.UUID, body: ReplayRange, db: DB, state: State, actor: Admin
) -> ReplayResult:
    count = service.replay_range(
        db,
        endpoint_id,
        start=body.start,
        end=body.end,
        failed_only=body.failed_only,
        actor=actor,
        now=state.clock.now(),
    )
    return ReplayResult(replayed=count)


@deliveries_router.get("/{delivery_id}", response_model=DeliveryDetail)
def get_delivery(delivery_id: uuid.UUID, db: DB, _: Admin) -> DeliveryDetail:
    delivery = service.get_delivery(db, delivery_id)
    return DeliveryDetail(
        **_delivery(delivery).model_dump(),
        log=[AttemptRead.model_validate(a) for a in service.delivery_log(db, delivery_id)],
    )


@deliveries_router.post("/{delivery_id}/replay", response_model=DeliveryRead)
def replay_delivery(delivery_id: uuid.UUID, db: DB, state: State, actor: Admin) -> DeliveryRead:
    return _delivery(service.replay_delivery(db, delivery_id, actor=actor, now=state.clock.now()))


@hooks_admin.get("", response_model=list[HookRead])
def list_hooks(db: DB, _: Reader) -> list[HookRead]:
    return [HookRead.model_validate(h) for h in service.list_hooks(db)]


@hooks_admin.post("", response_model=HookCreated, status_code=201)
def create_hook(body: HookCreate, db: DB, state: State, actor: Admin) -> HookCreated:
    hook, token = service.create_hook(db, body, actor=actor, now=state.clock.now())
    return HookCreated(
        **HookRead.model_validate(hook).model_dump(),
        token=token,
        url_path=f"/api/v1/hooks/{token}",
    )


@hooks_admin.delete("/{hook_id}", status_code=204)
def delete_hook(hook_id: uuid.UUID, db: DB, state: State, actor: Admin) -> Response:
    service.delete_hook(db, hook_id, actor=actor, now=state.clock.now())
    return Response(status_code=204)


@hooks_public.post(
    "/{token}",
    response_model=HookAccepted,
    status_code=202,
    summary="Post JSON from another system; it becomes a hook.received event",
)
async def receive_hook(
    token: Annotated[str, Path(min_length=8, max_length=200)], request: Request, state: State
) -> HookAccepted:
    raw = await request.body()
    if len(raw) > MAX_HOOK_BYTES:
        raise HookTooLarge(f"the body is {len(raw)} bytes; the limit is {MAX_HOOK_BYTES}")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedHook(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict | list):
        raise MalformedHook("the body must be a JSON object or array")

    def accept() -> tuple[int, uuid.UUID | None]:
        with state.sessions() as session, session.begin():
            return service.receive(session, token, body, now=state.clock.now())

    event_id, account_id = await run_in_threadpool(accept)
    return HookAccepted(event_id=event_id, account_id=account_id)
