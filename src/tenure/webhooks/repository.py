"""Every query of the webhooks domain."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from tenure.hub.models import Outbox
from tenure.webhooks.models import (
    IncomingHook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookStatus,
)

_PENDING: ColumnElement[Any] = literal_column("'pending'")


def add(session: Session, row: Any) -> None:
    session.add(row)
    session.flush()


def endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)))


def endpoint(session: Session, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
    return session.get(WebhookEndpoint, endpoint_id)


def enabled_endpoints(session: Session) -> list[tuple[uuid.UUID, list[str]]]:
    return [
        (row_id, types)
        for row_id, types in session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
                WebhookEndpoint.enabled.is_(True)
            )
        )
    ]


def insert_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(WebhookDelivery), list(rows))


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for sending, with what the request needs."""

    id: uuid.UUID
    endpoint_id: uuid.UUID
    account_id: uuid.UUID | None
    outbox_id: int
    attempts: int
    url: str
    secrets: tuple[str, ...]
    event_type: str
    occurred_at: datetime
    payload: dict[str, Any]


def claim_due(
    session: Session, *, now: datetime, lease_until: datetime, limit: int
) -> list[Claimed]:
    """Due deliveries of enabled endpoints, oldest event first, leased to the caller.

    Skips an account's deliveries to an endpoint while an earlier one waits for a retry
    or is held by another sender, and (on PostgreSQL) rows another sender is claiming.
    """
    blocker = aliased(WebhookDelivery)
    blocked = exists().where(
        blocker.endpoint_id == WebhookDelivery.endpoint_id,
        blocker.account_id == WebhookDelivery.account_id,
        blocker.status == _PENDING,
        blocker.outbox_id < WebhookDelivery.outbox_id,
        or_(blocker.next_attempt_at > now, blocker.lease_until > now),
    )
    query = (
        select(
            WebhookDelivery.id,
            WebhookDelivery.endpoint_id,
            WebhookDelivery.account_id,
            WebhookDelivery.outbox_id,
            WebhookDelivery.attempts,
            WebhookEndpoint.url,
            WebhookEndpoint.secret,
            WebhookEndpoint.previous_secret,
            WebhookEndpoint.previous_secret_expires_at,
            Outbox.event_type,
            Outbox.occurred_at,
            Outbox.payload,
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(Outbox, Outbox.id == WebhookDelivery.outbox_id)
        .where(
            WebhookDelivery.status == _PENDING,
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now),
            WebhookEndpoint.enabled.is_(True),
            ~blocked,
        )
        .order_by(WebhookDelivery.outbox_id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    )
    claimed = []
    for row in session.execute(query):
        secrets = [row.secret]
        if row.previous_secret and (
            row.previous_secret_expires_at is None or row.previous_secret_expires_at > now
        ):
            secrets.append(row.previous_secret)
        claimed.append(
            Claimed(
                id=row.id,
                endpoint_id=row.endpoint_id,
                account_id=row.account_id,
                outbox_id=row.outbox_id,
                attempts=row.attempts,
                url=row.url,
                secrets=tuple(secrets),
                event_type=row.event_type,
                occurred_at=row.occurred_at,
                payload=row.payload,
            )
        )
    if claimed:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_([c.id for c in claimed]))
            .values(lease_until=lease_until)
            .execution_options(synchronize_session=False)
        )
    return claimed


def first_pending(
    session: Session, pairs: Collection[tuple[uuid.UUID, uuid.UUID]]
) -> dict[tuple[uuid.UUID, uuid.UUID], int]:
    """The earliest pending outbox id per (endpoint, account): a claimed chain must start
    there, or an earlier delivery is in another sender's hands."""
    if not pairs:
        return {}
    endpoints_ = {e for e, _ in pairs}
    accounts = {a for _, a in pairs}
    rows = session.execute(
        select(
            WebhookDelivery.endpoint_id,
            WebhookDelivery.account_id,
            func.min(WebhookDelivery.outbox_id),
        )
        .where(
            WebhookDelivery.status == _PENDING,
            WebhookDelivery.endpoint_id.in_(endpoints_),
            WebhookDelivery.account_id.in_(accounts),
        )
        .group_by(WebhookDelivery.endpoint_id, WebhookDelivery.account_id)
    )
    return {(e, a): first for e, a, first in rows if a is not None}


def release(session: Session, ids: Collection[uuid.UUID]) -> None:
    if ids:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(list(ids)))
            .values(lease_until=None)
            .execution_options(synchronize_session=False)
        )


def update_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk UPDATE by primary key (rows carry "id"), grouped by the set of columns."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for group in groups.values():
        session.execute(update(WebhookDelivery), group)


def add_attempts(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(WebhookAttempt), list(rows))


def lock_endpoints(session: Session, ids: Collection[uuid.UUID]) -> list[WebhookEndpoint]:
    if not ids:
        return []
    return list(
        session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.id.in_(list(ids))).with_for_update()
        )
    )


def deliveries_query(
    *,
    endpoint_id: uuid.UUID | None,
    status: str | None,
    event_type: str | None,
    account_id: uuid.UUID | None,
) -> Select[WebhookDelivery]:
    query = select(WebhookDelivery)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if event_type is not None:
        query = query.where(WebhookDelivery.event_type == event_type)
    if account_id is not None:
        query = query.where(WebhookDelivery.account_id == account_id)
    return query


def delivery(session: Session, delivery_id: uuid.UUID) -> WebhookDelivery | None:
    return session.get(WebhookDelivery, delivery_id)


def lock_delivery(session: Session, delivery_id: uuid.UUID) -> WebhookDelivery | None:
    return session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
    )


def attempts(session: Session, delivery_id: uuid.UUID, *, limit: int = 100) -> list[WebhookAttempt]:
    return list(
        session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.attempted_at.desc(), WebhookAttempt.id.desc())
            .limit(limit)
        )
    )


def reset_range(
    session: Session,
    endpoint_id: uuid.UUID,
    *,
    start: datetime,
    end: datetime,
    statuses: Collection[str],
    now: datetime,
) -> int:
    """Send again the endpoint's deliveries created in [start, end) with these statuses."""
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.created_at >= start,
            WebhookDelivery.created_at < end,
            WebhookDelivery.status.in_(list(statuses)),
        )
        .values(
            status=WebhookStatus.pending.value,
            attempts=0,
            next_attempt_at=now,
            lease_until=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def status_counts(session: Session, endpoint_id: uuid.UUID) -> dict[str, int]:
    return {
        status: count
        for status, count in session.execute(
            select(WebhookDelivery.status, func.count())
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .group_by(WebhookDelivery.status)
        )
    }


def hooks(session: Session) -> list[IncomingHook]:
    return list(session.scalars(select(IncomingHook).order_by(IncomingHook.name)))


def hook(session: Session, hook_id: uuid.UUID) -> IncomingHook | None:
    return session.get(IncomingHook, hook_id)


def hook_by_name(session: Session, name: str) -> IncomingHook | None:
    return session.scalar(select(IncomingHook).where(IncomingHook.name == name))


def hook_by_token_hash(session: Session, token_hash: str) -> IncomingHook | None:
    return session.scalar(select(IncomingHook).where(IncomingHook.token_hash == token_hash))


def prune(session: Session, *, before: datetime) -> int:
    result = session.execute(
        delete(WebhookDelivery)
        .where(WebhookDelivery.created_at < before, WebhookDelivery.status != _PENDING)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def pending_outbox_ids() -> Select[Any]:
    return select(WebhookDelivery.outbox_id).where(WebhookDelivery.status == _PENDING)
