"""Outbound webhook endpoints and their deliveries; incoming hooks."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from tenure.accounts import service as accounts_service
from tenure.auth import service as auth_service
from tenure.hub import service as hub_service
from tenure.hub.events import EVENT_TYPES, HookReceived, WebhookTest
from tenure.kit.actor import Actor
from tenure.kit.errors import Conflict, InvalidInput, NotFound
from tenure.kit.netguard import check_destination
from tenure.kit.pagination import Page, paginate
from tenure.kit.security import new_token, token_digest
from tenure.webhooks import repository as repo
from tenure.webhooks import signing
from tenure.webhooks.models import IncomingHook, WebhookDelivery, WebhookEndpoint, WebhookStatus
from tenure.webhooks.schemas import EndpointCreate, EndpointUpdate, HookCreate

# Attempt n (1-based) failed: wait about BASE * 4^(n-1), capped at a day, +-20% jitter.
# 11 attempts span about three days: 5 s, 20 s, 80 s, 5 min, 21 min, 85 min, 5.7 h,
# 22.8 h, 24 h, 24 h.
MAX_ATTEMPTS = 11
RETRY_BASE = timedelta(seconds=5)
RETRY_CAP = timedelta(hours=24)
SECRET_OVERLAP = timedelta(hours=24)
MAX_PAGE = 200
MAX_ERROR = 1000


def retry_delay(attempts: int, rng: random.Random) -> timedelta:
    """Wait after the `attempts`-th failed attempt: exponential, capped, with jitter."""
    raw = min(RETRY_CAP.total_seconds(), RETRY_BASE.total_seconds() * 4 ** min(attempts - 1, 20))
    return timedelta(seconds=raw * rng.uniform(0.8, 1.2))


def webhook_id(delivery_id: uuid.UUID) -> str:
    """The `webhook-id` of a delivery: stable across retries and replays."""
    return f"msg_{delivery_id.hex}"


def _check_types(types: Sequence[str]) -> list[str]:
    unknown = sorted(set(types) - EVENT_TYPES.keys())
    if unknown:
        raise InvalidInput(
            f"unknown event types: {', '.join(unknown)} (see GET /api/v1/events/types)",
            field="event_types",
        )
    return sorted(set(types))


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return repo.endpoints(session)


def get_endpoint(session: Session, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = repo.endpoint(session, endpoint_id)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


def create_endpoint(
    session: Session, data: EndpointCreate, *, actor: Actor, now: datetime, allow_private: bool
) -> WebhookEndpoint:
    """A new endpoint with its own signing secret; the URL must be a public http(s) one."""
    check_destination(data.url, allow_private=allow_private)
    endpoint = WebhookEndpoint(
        url=data.url,
        description=data.description,
        event_types=_check_types(data.event_types),
        enabled=True,
        secret=signing.new_secret(),
        created_at=now,
        updated_at=now,
    )
    repo.add(session, endpoint)
    auth_service.audit(
        session,
        actor,
        "webhook.create",
        now=now,
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        details={"url": endpoint.url, "event_types": endpoint.event_types},
    )
    return endpoint


def update_endpoint(
    session: Session,
    endpoint_id: uuid.UUID,
    data: EndpointUpdate,
    *,
    actor: Actor,
    now: datetime,
    allow_private: bool,
) -> WebhookEndpoint:
    endpoint = get_endpoint(session, endpoint_id)
    changes = data.model_dump(exclude_unset=True)
    for field in ("url", "event_types", "description", "enabled"):
        if field in changes and changes[field] is None:
            raise InvalidInput(f"{field} cannot be null", field=field)
    if "url" in changes:
        check_destination(changes["url"], allow_private=allow_private)
    if "event_types" in changes:
        changes["event_types"] = _check_types(changes["event_types"])
    diff: dict[str, Any] = {}
    for field, value in changes.items():
        if getattr(endpoint, field) != value:
            diff[field] = {"from": getattr(endpoint, field), "to": value}
            setattr(endpoint, field, value)
    if diff.get("enabled", {}).get("to") is True:
        # Re-enabled: pending deliveries resume from now, the failure clock starts again.
        endpoint.disabled_reason = None
        endpoint.failing_since = None
    if diff:
        endpoint.updated_at = now
        auth_service.audit(
            session,
            actor,
            "webhook.update",
            now=now,
            target_type="webhook_endpoint",
            target_id=endpoint.id,
            details={"changes": diff},
        )
    return endpoint


def delete_endpoint(
    session: Session, endpoint_id: uuid.UUID, *, actor: Actor, now: datetime
) -> None:
    endpoint = get_endpoint(session, endpoint_id)
    session.delete(endpoint)
    auth_service.audit(
        session,
        actor,
        "webhook.delete",
        now=now,
        target_type="webhook_endpoint",
        target_id=endpoint_id,
        details={"url": endpoint.url},
    )
    session.flush()


def rotate_secret(
    session: Session, endpoint_id: uuid.UUID, *, actor: Actor, now: datetime
) -> WebhookEndpoint:
    """A new signing secret; the old one still signs (a second signature) for 24 hours."""
    endpoint = get_endpoint(session, endpoint_id)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + SECRET_OVERLAP
    endpoint.secret = signing.new_secret()
    endpoint.updated_at = now
    auth_service.audit(
        session,
        actor,
        "webhook.rotate_secret",
        now=now,
        target_type="webhook_endpoint",
        target_id=endpoint.id,
    )
    session.flush()
    return endpoint


def send_test(session: Session, endpoint_id: uuid.UUID, *, actor: Actor, now: datetime) -> int:
    """Queue a `webhook.test` event for this endpoint alone; returns its outbox id."""
    endpoint = get_endpoint(session, endpoint_id)
    if not endpoint.enabled:
        # The fan-out skips disabled endpoints: the test would be dropped, not queued.
        raise Conflict(f"webhook endpoint {endpoint_id} is disabled; enable it to send a test")
    return hub_service.publish(
        session,
        WebhookTest(
            message=f"test from Tenure, requested by {actor.label}", endpoint_id=endpoint.id
        ),
        account_id=None,
        now=now,
    )


def fan_out(session: Session, rows: list[tuple[int, str, uuid.UUID | None]], now: datetime) -> None:
    """Dispatcher hook: one delivery per new outbox row and enabled endpoint that wants it."""
    endpoints = repo.enabled_endpoints(session)
    if not endpoints or not rows:
        return
    tests = {outbox_id for outbox_id, event_type, _ in rows if event_type == WebhookTest.TYPE}
    test_targets = hub_service.payload_field(session, tests, "endpoint_id") if tests else {}
    deliveries: list[dict[str, Any]] = []
    for outbox_id, event_type, account_id in rows:
        for endpoint_id, types in endpoints:
            if outbox_id in tests:
                if test_targets.get(outbox_id) != str(endpoint_id):
                    continue
            elif types and event_type not in types:
                continue
            deliveries.append(
                {
                    "id": uuid.uuid4(),
                    "endpoint_id": endpoint_id,
                    "outbox_id": outbox_id,
                    "account_id": account_id,
                    "event_type": event_type,
                    "status": WebhookStatus.pending.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    repo.insert_deliveries(session, deliveries)


def list_deliveries(
    session: Session,
    *,
    endpoint_id: uuid.UUID | None = None,
    status: str | None = None,
    event_type: str | None = None,
    account_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[WebhookDelivery]:
    """The delivery log, newest first."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    if status is not None and status not in {s.value for s in WebhookStatus}:
        raise InvalidInput(f"unknown status {status!r}", field="status")
    return paginate(
        session,
        repo.deliveries_query(
            endpoint_id=endpoint_id, status=status, event_type=event_type, account_id=account_id
        ),
        sort_column=WebhookDelivery.created_at,
        id_column=WebhookDelivery.id,
        descending=True,
        cursor=cursor,
        limit=limit,
    )


def get_delivery(session: Session, delivery_id: uuid.UUID) -> WebhookDelivery:
    delivery = repo.delivery(session, delivery_id)
    if delivery is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    return delivery


def delivery_log(session: Session, delivery_id: uuid.UUID) -> list[Any]:
    """The attempts of a delivery, newest first."""
    return list(repo.attempts(session, delivery_id))


def status_counts(session: Session, endpoint_id: uuid.UUID) -> dict[str, int]:
    return repo.status_counts(session, endpoint_id)


def replay_delivery(
    session: Session, delivery_id: uuid.UUID, *, actor: Actor, now: datetime
) -> WebhookDelivery:
    """Send a delivery again (same webhook-id) from its first attempt."""
    delivery = repo.lock_delivery(session, delivery_id)
    if delivery is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    if delivery.status == WebhookStatus.pending.value:
        raise Conflict(f"delivery {delivery_id} is still pending; it will be attempted again")
    delivery.status = WebhookStatus.pending.value
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.lease_until = None
    delivery.updated_at = now
    auth_service.audit(
        session,
        actor,
        "webhook.replay",
        now=now,
        target_type="webhook_delivery",
        target_id=delivery.id,
    )
    session.flush()
    return delivery


def replay_range(
    session: Session,
    endpoint_id: uuid.UUID,
    *,
    start: datetime,
    end: datetime,
    failed_only: bool,
    actor: Actor,
    now: datetime,
) -> int:
    """Send again the endpoint's deliveries of events between start and end."""
    get_endpoint(session, endpoint_id)
    if end <= start:
        raise InvalidInput("end must be after start", field="end")
    statuses = [WebhookStatus.failed.value]
    if not failed_only:
        statuses.append(WebhookStatus.delivered.value)
    count = repo.reset_range(session, endpoint_id, start=start, end=end, statuses=statuses, now=now)
    auth_service.audit(
        session,
        actor,
        "webhook.replay_range",
        now=now,
        target_type="webhook_endpoint",
        target_id=endpoint_id,
        details={
            "start": start.isoformat(),
            "end": end.isoformat(),
            "failed_only": failed_only,
            "replayed": count,
        },
    )
    return count


# Incoming hooks.


def list_hooks(session: Session) -> list[IncomingHook]:
    return repo.hooks(session)


def create_hook(
    session: Session, data: HookCreate, *, actor: Actor, now: datetime
) -> tuple[IncomingHook, str]:
    """A new incoming hook and its secret token (shown once: only a digest is stored)."""
    if repo.hook_by_name(session, data.name) is not None:
        raise Conflict(f"an incoming hook named {data.name!r} already exists")
    token = "th_" + new_token(24)
    hook = IncomingHook(
        name=data.name,
        description=data.description,
        token_hash=token_digest(token),
        token_prefix=token[:10],
        account_path=data.account_path,
        enabled=True,
        received=0,
        created_at=now,
    )
    repo.add(session, hook)
    auth_service.audit(
        session,
        actor,
        "hook.create",
        now=now,
        target_type="incoming_hook",
        target_id=hook.id,
        details={"name": hook.name},
    )
    return hook, token


def delete_hook(session: Session, hook_id: uuid.UUID, *, actor: Actor, now: datetime) -> None:
    hook = repo.hook(session, hook_id)
    if hook is None:
        raise NotFound(f"no incoming hook {hook_id}")
    session.delete(hook)
    auth_service.audit(
        session,
        actor,
        "hook.delete",
        now=now,
        target_type="incoming_hook",
        target_id=hook_id,
        details={"name": hook.name},
    )
    session.flush()


def _at_path(body: Any, path: str) -> Any:
    value = body
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def receive(
    session: Session, token: str, body: Any, *, now: datetime
) -> tuple[int, uuid.UUID | None]:
    """Turn a post to an incoming hook into a `hook.received` event: (outbox id, account)."""
    hook = repo.hook_by_token_hash(session, token_digest(token))
    if hook is None or not hook.enabled:
        raise NotFound("no incoming hook at this address")
    external_id: str | None = None
    account_id: uuid.UUID | None = None
    if hook.account_path:
        value = _at_path(body, hook.account_path)
        if isinstance(value, str | int) and not isinstance(value, bool):
            external_id = str(value)
            account = accounts_service.get_account_by_external_id(session, external_id)
            account_id = account.id if account is not None else None
    outbox_id = hub_service.publish(
        session,
        HookReceived(
            hook_id=hook.id,
            hook_name=hook.name,
            account_id=account_id,
            account_external_id=external_id,
            body=body,
        ),
        account_id=account_id,
        now=now,
    )
    hook.received += 1
    hook.last_received_at = now
    return outbox_id, account_id


def prune(session: Session, *, before: datetime) -> int:
    """Delete finished deliveries created before `before`; pending ones stay."""
    return repo.prune(session, before=before)


def pending_outbox_ids() -> Select[Any]:
    """The outbox rows some webhook delivery still has to send (kept by the hub's pruning)."""
    return repo.pending_outbox_ids()
