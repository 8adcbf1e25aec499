"""Settings: outbound webhooks. The endpoints (create, enable, disable, test, rotate the
secret, delete), each endpoint's delivery log with replay of one delivery or of a time
range. For administrators. Clients of the webhooks service: no SQL here."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from tenure.deps import DB, State
from tenure.hub.events import EVENT_TYPES
from tenure.kit.actor import Actor
from tenure.kit.errors import Conflict, InvalidInput
from tenure.web.pages import PageActor, check_csrf, parse_moment, render, require_admin
from tenure.webhooks import service as webhooks_service
from tenure.webhooks.models import WebhookStatus
from tenure.webhooks.schemas import EndpointCreate, EndpointUpdate

router = APIRouter(include_in_schema=False)

WEBHOOK_PAGE_SIZE = 50
# Messages after a POST-redirect-GET: the query names one of these, never free text.
WEBHOOK_NOTICES = {
    "enabled": "Endpoint enabled: its pending deliveries resume now.",
    "disabled": "Endpoint disabled: nothing is sent to it until it is enabled again.",
    "deleted": "Endpoint deleted, with its delivery log.",
    "test": (
        "A webhook.test event was queued for this endpoint: the worker sends it within "
        "seconds and it appears in the delivery log."
    ),
    "replayed": "The delivery was set to be sent again, from its first attempt.",
}


def _webhook_notice(done: str, replayed: int | None) -> str | None:
    if done == "range" and replayed is not None:
        return (
            f"{replayed} deliver{'y' if replayed == 1 else 'ies'} set to be sent again."
            if replayed
            else "No delivery in that range matched: nothing to send again."
        )
    return WEBHOOK_NOTICES.get(done)


def _validation_detail(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )


def _webhooks_page(
    request: Request,
    db: DB,
    state: State,
    actor: Actor,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    endpoints = webhooks_service.list_endpoints(db)
    values: dict[str, Any] = {
        "endpoints": [(e, webhooks_service.status_counts(db, e.id)) for e in endpoints],
        "event_types": sorted(EVENT_TYPES),
        "new_secret": None,
        "rotated": None,
        "error": None,
        "notice": None,
        "form": {"url": "", "event_types": [], "description": ""},
        **context,
    }
    return render(
        request, "webhooks/list.html", state, actor, "settings", status_code=status_code, **values
    )


def _back(back: str, endpoint_id: uuid.UUID) -> str:
    return f"/settings/webhooks/{endpoint_id}" if back == "detail" else "/settings/webhooks"


@router.get("/settings/webhooks")
def webhooks_page(
    request: Request,
    db: DB,
    state: State,
    actor: PageActor,
    done: str = "",
) -> HTMLResponse:
    require_admin(actor)
    return _webhooks_page(request, db, state, actor, notice=WEBHOOK_NOTICES.get(done))


@router.post("/settings/webhooks")
def webhooks_create(
    request: Request,
    db: DB,
    state: State,
    actor: PageActor,
    url: Annotated[str, Form(max_length=4096)] = "",
    event_types: Annotated[list[str] | None, Form()] = None,
    description: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form()] = "",
) -> HTMLResponse:
    require_admin(actor)
    check_csrf(request, state, csrf)
    form = {"url": url.strip(), "event_types": event_types or [], "description": description}
    try:
        data = EndpointCreate(
            url=form["url"], event_types=form["event_types"], description=description.strip()
        )
        with db.begin_nested():
            endpoint = webhooks_service.create_endpoint(
                db,
                data,
                actor=actor,
                now=state.clock.now(),
                allow_private=state.settings.allow_private_destinations,
            )
    except ValidationError as exc:
        return _webhooks_page(
            request, db, state, actor, status_code=422, error=_validation_detail(exc), form=form
        )
    except InvalidInput as exc:
        return _webhooks_page(
            request, db, state, actor, status_code=422, error=exc.detail, form=form
        )
    # The secret is shown in this answer only: a reload of the page does not show it again.
    return _webhooks_page(request, db, state, actor, status_code=201, new_secret=endpoint)


@router.get("/settings/webhooks/deliveries/{delivery_id}")
def webhook_delivery_page(
    request: Request,
    delivery_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    done: str = "",
) -> HTMLResponse:
    require_admin(actor)
    return _delivery_page(request, db, state, actor, delivery_id, notice=WEBHOOK_NOTICES.get(done))


def _delivery_page(
    request: Request,
    db: DB,
    state: State,
    actor: Actor,
    delivery_id: uuid.UUID,
    *,
    status_code: int = 200,
    notice: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    delivery = webhooks_service.get_delivery(db, delivery_id)
    return render(
        request,
        "webhooks/delivery.html",
        state,
        actor,
        "settings",
        status_code=status_code,
        delivery=delivery,
        webhook_id=webhooks_service.webhook_id(delivery.id),
        endpoint=webhooks_service.get_endpoint(db, delivery.endpoint_id),
        attempts=webhooks_service.delivery_log(db, delivery.id),
        notice=notice,
        error=error,
    )


@router.post("/settings/webhooks/deliveries/{delivery_id}/replay")
def webhook_delivery_replay(
    request: Request,
    delivery_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    require_admin(actor)
    check_csrf(request, state, csrf)
    try:
        with db.begin_nested():
            webhooks_service.replay_delivery(db, delivery_id, actor=actor, now=state.clock.now())
    except Conflict as exc:
        return _delivery_page(
            request, db, state, actor, delivery_id, status_code=409, error=exc.detail
        )
    return RedirectResponse(
        f"/settings/webhooks/deliveries/{delivery_id}?done=replayed", status_code=303
    )


def _endpoint_page(
    request: Request,
    db: DB,
    state: State,
    actor: Actor,
    endpoint_id: uuid.UUID,
    *,
    status: str = "",
    cursor: str | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    endpoint = webhooks_service.get_endpoint(db, endpoint_id)
    page = webhooks_service.list_deliveries(
        db, endpoint_id=endpoint.id, status=status or None, cursor=cursor, limit=WEBHOOK_PAGE_SIZE
    )
    base = f"/settings/webhooks/{endpoint.id}"

    def link(page_cursor: str) -> str:
        return (
            base
            + "?"
            + urlencode({**({"status": status} if status else {}), "cursor": page_cursor})
        )

    values: dict[str, Any] = {
        "endpoint": endpoint,
        "counts": webhooks_service.status_counts(db, endpoint.id),
        "page": page,
        "webhook_id": webhooks_service.webhook_id,
        "status": status,
        "statuses": [s.value for s in WebhookStatus],
        "next_link": link(page.next_cursor) if page.next_cursor else None,
        "prev_link": link(page.prev_cursor) if page.prev_cursor else None,
        "now": state.clock.now(),
        "notice": None,
        "error": None,
        "replay": {"start": "", "end": "", "failed_only": True},
        **context,
    }
    return render(
        request,
        "webhooks/endpoint.html",
        state,
        actor,
        "settings",
        status_code=status_code,
        **values,
    )


@router.get("/settings/webhooks/{endpoint_id}")
def webhook_endpoint_page(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    status: str = "",
    cursor: str | None = None,
    done: str = "",
    replayed: int | None = None,
) -> HTMLResponse:
    require_admin(actor)
    return _endpoint_page(
        request,
        db,
        state,
        actor,
        endpoint_id,
        status=status,
        cursor=cursor,
        notice=_webhook_notice(done, replayed),
    )


@router.post("/settings/webhooks/{endpoint_id}/enable")
def webhook_enable(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
    back: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    return _set_enabled(request, endpoint_id, db, state, actor, csrf, back, enabled=True)


@router.post("/settings/webhooks/{endpoint_id}/disable")
def webhook_disable(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
    back: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    return _set_enabled(request, endpoint_id, db, state, actor, csrf, back, enabled=False)


def _set_enabled(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: Actor,
    csrf: str,
    back: str,
    *,
    enabled: bool,
) -> Response:
    require_admin(actor)
    check_csrf(request, state, csrf)
    webhooks_service.update_endpoint(
        db,
        endpoint_id,
        EndpointUpdate(enabled=enabled),
        actor=actor,
        now=state.clock.now(),
        allow_private=state.settings.allow_private_destinations,
    )
    done = "enabled" if enabled else "disabled"
    return RedirectResponse(f"{_back(back, endpoint_id)}?done={done}", status_code=303)


@router.post("/settings/webhooks/{endpoint_id}/test")
def webhook_send_test(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    require_admin(actor)
    check_csrf(request, state, csrf)
    webhooks_service.send_test(db, endpoint_id, actor=actor, now=state.clock.now())
    return RedirectResponse(f"/settings/webhooks/{endpoint_id}?done=test", status_code=303)


@router.post("/settings/webhooks/{endpoint_id}/rotate")
def webhook_rotate(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
) -> HTMLResponse:
    require_admin(actor)
    check_csrf(request, state, csrf)
    endpoint = webhooks_service.rotate_secret(db, endpoint_id, actor=actor, now=state.clock.now())
    # Shown in this answer only, like a new endpoint's secret.
    return _webhooks_page(request, db, state, actor, rotated=endpoint)


@router.get("/settings/webhooks/{endpoint_id}/delete")
def webhook_delete_confirm(
    request: Request, endpoint_id: uuid.UUID, db: DB, state: State, actor: PageActor
) -> HTMLResponse:
    require_admin(actor)
    endpoint = webhooks_service.get_endpoint(db, endpoint_id)
    return render(
        request,
        "webhooks/delete.html",
        state,
        actor,
        "settings",
        endpoint=endpoint,
        counts=webhooks_service.status_counts(db, endpoint.id),
    )


@router.post("/settings/webhooks/{endpoint_id}/delete")
def webhook_delete(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    require_admin(actor)
    check_csrf(request, state, csrf)
    webhooks_service.delete_endpoint(db, endpoint_id, actor=actor, now=state.clock.now())
    return RedirectResponse("/settings/webhooks?done=deleted", status_code=303)


@router.post("/settings/webhooks/{endpoint_id}/replay")
def webhook_replay_range(
    request: Request,
    endpoint_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    start: Annotated[str, Form(max_length=64)] = "",
    end: Annotated[str, Form(max_length=64)] = "",
    failed_only: Annotated[bool, Form()] = False,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    require_admin(actor)
    check_csrf(request, state, csrf)
    try:
        with db.begin_nested():
            count = webhooks_service.replay_range(
                db,
                endpoint_id,
                start=parse_moment(start, "start"),
                end=parse_moment(end, "end"),
                failed_only=failed_only,
                actor=actor,
                now=state.clock.now(),
            )
    except InvalidInput as exc:
        return _endpoint_page(
            request,
            db,
            state,
            actor,
            endpoint_id,
            status_code=422,
            error=exc.detail,
            replay={"start": start, "end": end, "failed_only": failed_only},
        )
    return RedirectResponse(
        f"/settings/webhooks/{endpoint_id}?done=range&replayed={count}", status_code=303
    )
